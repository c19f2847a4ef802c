import signal

pytest_plugins = ["pytester"]

# Several tests send Ctrl-C (SIGINT) to a program they start (the examples, the CLI,
# FakeAsterisk under asyncio.run) and check that it ends. A shell starts a command
# put in the background (`pytest &`, no job control) with SIGINT ignored, and every
# process it starts inherits that: those programs would ignore the Ctrl-C and the
# tests fail for a reason outside them. A handler of Python's own is reset to the
# default in a child, so the children here get Ctrl-C as a user's terminal sends it.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
