"""Migration step 5: the delivery attempt history table; refund success times moved to UTC."""

import logging

import peewee
from playhouse.migrate import SchemaMigrator

from tornpay.protocol.wechat_time import beijing_to_utc, utc_text

logger = logging.getLogger(__name__)


def delivery_attempts_and_utc_refund_times(migrator: SchemaMigrator, db: peewee.Database) -> None:
    """Create tornpay_delivery_attempt; rewrite stored Beijing success_time values as UTC text."""
    from tornpay.storage.models import DeliveryAttempt, Refund

    DeliveryAttempt._schema.create_table(safe=True)
    # Before this step success_time held WeChat's text as received (Beijing time).
    rows = (Refund.select(Refund.out_refund_no, Refund.success_time)
            .where(Refund.success_time.is_null(False)).tuples())
    for out_refund_no, text in list(rows):
        moment = beijing_to_utc(text)
        if moment is None:
            logger.warning("refund %s: success_time %r is not a WeChat time; left as is",
                           out_refund_no, text)
            continue
        (Refund.update(success_time=utc_text(moment))
         .where(Refund.out_refund_no == out_refund_no).execute())
