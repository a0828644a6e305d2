#!/usr/bin/python3
"""What policies cost a broker, measured the same way on warrend and on RabbitMQ:

  declare  queue.declare per second over one channel (non-durable queues), with N policies
           in vhost "/" that match none of them: every declare looks for its policy.
  apply    a max-length 1 policy put over Q queues of 2 messages each: how long the PUT takes,
           and how long until a client that looks at each queue in turn (passive declare)
           has seen every one of them limited.

Usage: bench/policy_cost.py AMQP_PORT HTTP_PORT declare POLICIES QUEUES
       bench/policy_cost.py AMQP_PORT HTTP_PORT apply QUEUES
Both on 127.0.0.1 as guest; what it makes (policies named policy-cost-*, queues
policy-cost.*) is deleted at the end. Run it against each broker in turn, alternating.
"""

import base64
import json
import sys
import time
import urllib.request

import pika


def api(port, method, path, body=None):
    req = urllib.request.Request("http://127.0.0.1:%d/api%s" % (port, path), method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    req.add_header("Authorization", "Basic " + base64.b64encode(b"guest:guest").decode())
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status


def declare_rate(amqp_port, http_port, policies, queues):
    names = ["policy-cost-%d" % i for i in range(policies)]
    for i, name in enumerate(names):
        api(http_port, "PUT", "/policies/%2F/" + name,
            {"pattern": "^policy-cost-none-%d[.]" % i, "definition": {"max-length": 1000 + i}})
    conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", amqp_port))
    ch = conn.channel()
    try:
        start = time.monotonic()
        for i in range(queues):
            ch.queue_declare("policy-cost.%d" % i)
        took = time.monotonic() - start
    finally:
        for i in range(queues):
            ch.queue_delete("policy-cost.%d" % i)
        conn.close()
        for name in names:
            api(http_port, "DELETE", "/policies/%2F/" + name)
    print("declare policies=%d queues=%d declares_per_s=%.0f" % (policies, queues, queues / took))


def apply_time(amqp_port, http_port, queues):
    conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", amqp_port))
    ch = conn.channel()
    ch.confirm_delivery()
    names = ["policy-cost.%d" % i for i in range(queues)]
    try:
        for q in names:
            ch.queue_declare(q)
            ch.basic_publish("", q, b"a")
            ch.basic_publish("", q, b"b")
        start = time.monotonic()
        api(http_port, "PUT", "/policies/%2F/policy-cost-apply",
            {"pattern": "^policy-cost[.]", "definition": {"max-length": 1}})
        put = time.monotonic() - start
        deadline = start + 60
        for q in names:
            while ch.queue_declare(q, passive=True).method.message_count != 1:
                if time.monotonic() > deadline:
                    raise SystemExit("queue %s was not limited within 60 s" % q)
                time.sleep(0.001)
        seen = time.monotonic() - start
    finally:
        api(http_port, "DELETE", "/policies/%2F/policy-cost-apply")
        for q in names:
            ch.queue_delete(q)
        conn.close()
    print("apply queues=%d put_s=%.3f all_limited_s=%.3f" % (queues, put, seen))


def main(argv):
    if len(argv) >= 4 and argv[3] == "declare" and len(argv) == 6:
        declare_rate(int(argv[1]), int(argv[2]), int(argv[4]), int(argv[5]))
    elif len(argv) == 5 and argv[3] == "apply":
        apply_time(int(argv[1]), int(argv[2]), int(argv[4]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
