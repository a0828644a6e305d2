#!/usr/bin/python3
"""How long a queue takes to move to the queue of its name on another node, and what it costs
the node it leaves, in memory (warrend only: RabbitMQ has no such merge).

Two warrend nodes, each a cluster of one, get a durable queue of one name (a's first, so a's
stays); b's gets N persistent messages of S bytes, most of them paged out (b keeps
--queue-memory-mb of bodies in memory). b then joins a, and its queue moves its messages to
a's. Printed: the seconds from the start of the move to its end (as b logs them), b's RSS
before the join and its peak during the move (sampled every 10 ms), and a's depth after.

Usage: bench/yield_move.py [--messages N] [--size S] [--queue-memory-mb M] [--build-dir DIR]
"""
import argparse
import os
import re
import shutil
import socket
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import pika  # noqa: E402
from harness import Broker, wait_until  # noqa: E402
from mgmt_support import Api  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def start(binary, root, name, port, extra=()):
    data = os.path.join(root, name)
    os.makedirs(data)
    b = Broker(binary=binary, data_dir=data, extra_args=[
        "--cluster-name=%s@localhost" % name, "--cluster-port=%d" % port, *extra]).start()
    host, http = b.wait_listener("http")
    return b, Api(host, http)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--messages", type=int, default=200000)
    p.add_argument("--size", type=int, default=1000)
    p.add_argument("--queue-memory-mb", type=int, default=16)
    p.add_argument("--build-dir", default=os.path.join(ROOT, "build-release"))
    args = p.parse_args()
    binary = os.path.join(args.build_dir, "bin", "warrend")
    root = tempfile.mkdtemp(prefix="warren-move-")
    nodes = []
    try:
        conf = os.path.join(root, "b.conf")
        with open(conf, "w") as f:
            f.write("persistence.queue_memory_mb = %d\n" % args.queue_memory_mb)
        port_a = free_port()
        a, _ = start(binary, root, "a", port_a)
        nodes.append(a)
        b, api_b = start(binary, root, "b", free_port(), ("--config", conf))
        nodes.append(b)
        ca = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", a.port))
        cha = ca.channel()
        cha.queue_declare("move", durable=True)
        cb = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", b.port))
        chb = cb.channel()
        chb.queue_declare("move", durable=True)
        body = b"x" * args.size
        props = pika.BasicProperties(delivery_mode=2)
        for _ in range(args.messages):
            chb.basic_publish("", "move", body, props)
        chb.confirm_delivery()  # (a round trip: everything before it has arrived)
        chb.basic_publish("", "move", body, props)
        cb.close()
        before = rss_kb(b.proc.pid)
        peak = [before]
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], rss_kb(b.proc.pid))
                time.sleep(0.01)
        threading.Thread(target=sample, daemon=True).start()
        api_b.call("POST", "/api/cluster/join", {"address": "127.0.0.1:%d" % port_a})
        moved = r"(\S+ \S+) \[warning\] queue 'move' .* declared earlier: (\d+) message"
        if not wait_until(lambda: re.search(moved, b.log_text()), 600, 0.05):
            sys.exit("the move did not end within 600 s")
        done.set()
        log = b.log_text()
        begun = re.search(r"(\S+ \S+) \[warning\] queue 'move'.* moves its messages there", log)
        ended = re.search(moved, log)
        t = [time.mktime(time.strptime(m.group(1)[:19], "%Y-%m-%d %H:%M:%S")) +
             float("0" + m.group(1)[19:]) for m in (begun, ended)]
        depth = wait_until(lambda: cha.queue_declare("move", passive=True).method.message_count
                           >= args.messages + 1, 30, 0.2) and \
            cha.queue_declare("move", passive=True).method.message_count
        print("moved %s messages of %d B in %.2f s; b's RSS %d MB before the join, peak %d MB "
              "during the move; a's depth after: %s"
              % (ended.group(2), args.size, t[1] - t[0], before // 1024, peak[0] // 1024, depth))
    finally:
        for n in nodes:
            n.stop_quietly()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
