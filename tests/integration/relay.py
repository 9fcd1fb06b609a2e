#!/usr/bin/env python3
"""A TCP relay for the pull-through tests: forwards 127.0.0.1:<free port>
to a target port, and sends what the target answers at a bounded rate, so
that a transfer from the "upstream" takes long enough to watch.

  relay.py PORT_FILE TARGET_PORT RATE_BYTES_PER_S BIG_SIZE DONE_FILE

It writes the bound port to PORT_FILE; the first time one connection has
carried BIG_SIZE bytes from the target, it writes the wall-clock time
(seconds since the epoch) to DONE_FILE: the moment the upstream finished
sending a file of that size. RATE 0 means no limit. Each connection's
bytes from the target are added to DONE_FILE + ".bytes" when it closes.
"""
import os
import socket
import sys
import threading
import time

port_file, target_port, rate, big, done_file = (
    sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]),
    sys.argv[5])
lock = threading.Lock()
state = {"done": False, "total": 0}
CHUNK = 64 * 1024


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def pump(src, dst, throttle):
    carried = 0
    start = time.monotonic()
    try:
        while True:
            data = src.recv(CHUNK)
            if not data:
                break
            dst.sendall(data)
            carried += len(data)
            if throttle and carried >= big:
                with lock:
                    if not state["done"]:
                        state["done"] = True
                        write_atomic(done_file, "%.6f\n" % time.time())
            if throttle and rate > 0:
                ahead = carried / rate - (time.monotonic() - start)
                if ahead > 0:
                    time.sleep(ahead)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if throttle:
            with lock:
                state["total"] += carried
                write_atomic(done_file + ".bytes", "%d\n" % state["total"])


def serve(client):
    try:
        upstream = socket.create_connection(("127.0.0.1", target_port))
    except OSError:
        client.close()
        return
    a = threading.Thread(target=pump, args=(client, upstream, False), daemon=True)
    b = threading.Thread(target=pump, args=(upstream, client, True), daemon=True)
    a.start()
    b.start()
    a.join()
    b.join()
    client.close()
    upstream.close()


def main():
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(64)
    write_atomic(port_file, "%d\n" % ls.getsockname()[1])
    while True:
        client, _ = ls.accept()
        threading.Thread(target=serve, args=(client,), daemon=True).start()


main()
