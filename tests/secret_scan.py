"""Pytest plugin: fail the session if any log record of the whole suite shows a known secret."""

import logging

import pytest

# Every secret the suite's settings use (conftest, cli_helpers); none may reach a log line.
SECRETS = {
    "api key": "192006250b4c09247ec02edce69f6a2d",
    # The simulator only runs with the shipped test credentials (SPEC §3).
    "app secret": "tornpay-simulator-app-secret",
    "cookie secret": "test-cookie-secret-0123456789abcdef",
    "cli cookie secret": "cli-test-cookie-secret-0123456789",
}


class SecretScanHandler(logging.Handler):
    """Sees every record that reaches the root logger and notes the ones naming a secret."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.nodeid = "<collection>"
        self.leaks = []
        self.extra = {}  # per-test secrets (OAuth codes, cookie values) added by tests

    def emit(self, record):
        try:
            text = record.getMessage()
        except Exception:  # a broken format string is logging's problem, not a leak
            text = str(record.msg)
        if record.exc_info and record.exc_info[1] is not None:
            text += " " + str(record.exc_info[1])
        for what, value in list(SECRETS.items()) + list(self.extra.items()):
            if value and value in text:
                self.leaks.append((self.nodeid, record.name, what))


HANDLER = SecretScanHandler()


def pytest_configure(config):
    logging.getLogger().addHandler(HANDLER)


def pytest_unconfigure(config):
    logging.getLogger().removeHandler(HANDLER)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    HANDLER.nodeid = item.nodeid
    HANDLER.extra = {}


@pytest.fixture
def secret_scan():
    """The session's scan handler: ``secret_scan.extra[name] = value`` adds a secret."""
    return HANDLER


def pytest_sessionfinish(session, exitstatus):
    if HANDLER.leaks:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        for nodeid, logger, what in HANDLER.leaks[:20]:
            line = f"SECRET IN LOG: {what} in a {logger} record during {nodeid}"
            if reporter is not None:
                reporter.write_line(line, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
