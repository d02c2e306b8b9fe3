"""The ceiling: a Tornado hello-world on one process (``python bench/hello.py PORT``).

Same Tornado, same single IOLoop, no logging, no database: every tornpay
figure in ``bench/run.py`` is also reported as a ratio to what this answers.
It accepts GET and POST (the notify load is a POST with a ~600-byte body).
"""

import asyncio
import sys

import tornado.web


class Hello(tornado.web.RequestHandler):
    def get(self):
        self.write("Hello, world")

    def post(self):
        self.write("Hello, world")


async def main(port: int) -> None:
    app = tornado.web.Application([(r"/.*", Hello)], log_function=lambda handler: None)
    app.listen(port, "127.0.0.1", backlog=2048)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
