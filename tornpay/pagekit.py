"""Template loading for every tornpay page: a folder's own templates plus shared fragments.

The payer's pages, the console and the simulator's phone pages each keep their
templates in their own folder (the simulator knows nothing of the merchant
side), yet open the same way. What they share lives here, in a neutral place
both may import: ``{% include "shared:head.html" %}`` reads
``tornpay/page_fragments/head.html`` whatever folder the including page is in.
"""

import os
from typing import Optional

import tornado.template

SHARED = "shared:"
FRAGMENTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "page_fragments")


class PageLoader(tornado.template.Loader):
    """A folder's templates; names starting ``shared:`` are tornpay's shared fragments.

    Made with Tornado's template defaults (autoescaped, single whitespace for
    ``.html``): an embedding estate's ``autoescape``, ``template_whitespace``
    and ``template_loader`` settings are for its own templates, not tornpay's.
    """

    def resolve_path(self, name: str, parent_path: Optional[str] = None) -> str:
        if name.startswith(SHARED):
            return name  # the same fragment from any folder, never relative to the includer
        return super().resolve_path(name, parent_path)

    def _create_template(self, name: str) -> tornado.template.Template:
        if not name.startswith(SHARED):
            return super()._create_template(name)
        with open(os.path.join(FRAGMENTS, name[len(SHARED):]), "rb") as f:
            return tornado.template.Template(f.read(), name=name, loader=self)
