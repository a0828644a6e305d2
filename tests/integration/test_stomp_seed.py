"""The Net::Stomp example from "How to run RabbitMQ's experimental STOMP
adapter": a receiver subscribed to the queue 'foo' (ack client) and a sender run
three times. The scripts in seed/ are the article's, with only the host and port
taken from the environment (STOMP_HOST, STOMP_PORT) and plain quotes; the
receiver prints each body followed by a literal "n", as the article's does.
"""

import os
import subprocess
import time
import unittest

import pika

from stomp_support import StompTestCase

HERE = os.path.dirname(os.path.abspath(__file__))
SEND = os.path.join(HERE, "seed", "rabbit_stomp_send.pl")
RECV = os.path.join(HERE, "seed", "rabbitmq_stomp_recv.pl")
PERL = "/usr/bin/perl"


def perl_has_net_stomp():
    try:
        return subprocess.run([PERL, "-MNet::Stomp", "-e", "1"], timeout=10,
                              stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class SeedNetStompTest(StompTestCase):

    def setUp(self):
        super().setUp()
        # A missing client is a broken test environment, not a reason to skip.
        self.assertTrue(perl_has_net_stomp(),
                        "perl with Net::Stomp is needed (Debian: libnet-stomp-perl)")
        self.env = dict(os.environ, STOMP_HOST=self.stomp_host,
                        STOMP_PORT=str(self.stomp_port))
        self.delete_foo()
        self.addCleanup(self.delete_foo)

    def delete_foo(self):
        conn = self.connect()
        conn.channel().queue_delete("foo")
        conn.close()

    def foo_state(self):
        """(consumers, messages) of queue foo, or None while it does not exist."""
        conn = self.connect()
        try:
            ok = conn.channel().queue_declare("foo", passive=True)
            return ok.method.consumer_count, ok.method.message_count
        except pika.exceptions.ChannelClosedByBroker:
            return None
        finally:
            conn.close()

    def wait_state(self, predicate, timeout):
        deadline = time.monotonic() + timeout
        while True:
            state = self.foo_state()
            if (state is not None and predicate(state)) or time.monotonic() >= deadline:
                return state
            time.sleep(0.1)

    def send(self, *args):
        done = subprocess.run([PERL, SEND, *args], env=self.env, cwd=HERE, timeout=20,
                              stdin=subprocess.DEVNULL, capture_output=True)
        self.assertEqual(done.returncode, 0, "sender %r failed: %r" % (args, done))

    def test_article_example(self):
        recv = subprocess.Popen([PERL, RECV], env=self.env, cwd=HERE,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)

        def stop():
            if recv.poll() is None:
                recv.kill()
                recv.communicate(timeout=10)
        self.addCleanup(stop)

        # "Run the receiver before the sender to make sure the queue exists."
        state = self.wait_state(lambda s: s[0] >= 1, 15)
        self.assertIsNotNone(state, "the receiver did not create queue foo")
        self.assertEqual(state[0], 1, "the receiver is not consuming from foo")

        self.send()
        self.send("hello world")
        self.send("QUIT")
        try:
            out, err = recv.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            state = self.foo_state()
            recv.kill()
            out, err = recv.communicate(timeout=10)
            self.fail("receiver still running 10 s after QUIT (its output is lost with it:"
                      " %r, stderr %r); queue foo (consumers, ready messages): %r"
                      % (out, err, state))
        self.assertEqual(recv.returncode, 0, "receiver failed: %r" % err)
        self.assertEqual(out, b"test messagenhello worldnQUITn")

        # It never ACKed (ack client): once it is gone the three are back in foo.
        state = self.wait_state(lambda s: s == (0, 3), 5)
        self.assertEqual(state, (0, 3), "(consumers, messages) of foo")


if __name__ == "__main__":
    unittest.main()
