"""python3 -m shmbus echo|hz|list: quick looks at a bus from Python.

  echo TOPIC   print each message: seq, bytes, latency, frame geometry or first bytes
  hz TOPIC     once a second: messages/s, MB/s, latency, losses
  list         the domains in the shm directory and, for one, its topics
"""
import argparse
import sys
import time

from . import Domain, Error, InvalidArgument, domains


def _open(args, observe=False):
    return Domain(args.domain, config=args.config, runtime_dir=args.runtime_dir,
                  name="python-" + args.command, observe=observe)


def _describe(msg):
    try:
        h = msg.frame_header()
        return f"frame {h.frame_number} {h.width}x{h.height} {h.format}"
    except InvalidArgument:
        with memoryview(msg) as mv:
            head = bytes(mv[:16]).hex(" ")
        return head + (" ..." if len(msg) > 16 else "")


def cmd_echo(args):
    with _open(args) as d, d.subscriber(args.topic, history=args.history) as sub:
        n = 0
        while args.count is None or n < args.count:
            msg = sub.recv(timeout=args.timeout)
            if msg is None:
                print(f"echo: nothing on {args.topic!r} for {args.timeout} s", file=sys.stderr)
                return 1
            with msg:
                lat = (time.monotonic_ns() - msg.timestamp_ns) / 1000
                print(f"seq {msg.seq:>8}  {len(msg):>10} B  {lat:9.1f} us  {_describe(msg)}",
                      flush=True)
            n += 1
    return 0


def cmd_hz(args):
    with _open(args) as d, d.subscriber(args.topic) as sub:
        end = time.monotonic() + args.duration if args.duration else None
        tick = time.monotonic() + 1.0
        count = nbytes = 0
        lat = []
        last = sub.stats()
        while end is None or time.monotonic() < end:
            msg = sub.recv(timeout=max(0.0, tick - time.monotonic()))
            if msg is not None:
                with msg:
                    count += 1
                    nbytes += len(msg)
                    lat.append(time.monotonic_ns() - msg.timestamp_ns)
            if time.monotonic() >= tick:
                st = sub.stats()
                lost = sum(st[k] - last[k] for k in ("expired", "dropped", "overflow"))
                last = st
                lat.sort()
                p50 = lat[len(lat) // 2] / 1000 if lat else 0.0
                print(f"{args.topic}: {count:6d} msg/s  {nbytes / 1e6:9.2f} MB/s  "
                      f"latency p50 {p50:8.1f} us  lost {lost}", flush=True)
                count = nbytes = 0
                lat.clear()
                tick += 1.0
    return 0


def cmd_list(args):
    if args.domain is None:
        for name in domains():
            print(name)
        return 0
    with _open(args, observe=True) as d:
        snap = d.snapshot()
    print(f"domain {snap['domain']}: {snap['alive']} participant(s) alive")
    for t in snap["topics"]:
        pubs = sum(p["alive"] for p in t["publishers"])
        subs = sum(s["alive"] for s in t["subscribers"])
        sent = sum(p["published"] for p in t["publishers"])
        print(f"  {t['name']:<32} pool {t['pool']:<12} publishers {pubs}  subscribers {subs}"
              f"  published {sent}")
    for p in snap["pools"]:
        total = sum(c["total"] for c in p["classes"])
        print(f"  pool {p['name']:<27} {p['used']}/{total} blocks in use")
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m shmbus", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--domain", help="domain name (default: the config's, else 'default'; "
                                     "list: without it, list the domains)")
    ap.add_argument("--config", help="the domain's JSON file (default: embedded default)")
    ap.add_argument("--runtime-dir", help="where the domain's ipc endpoints are")
    sp = ap.add_subparsers(dest="command", required=True)
    e = sp.add_parser("echo", help="print each message")
    e.add_argument("topic")
    e.add_argument("--count", type=int, help="stop after N messages")
    e.add_argument("--timeout", type=float, default=None,
                   help="give up after S seconds without a message (default: wait)")
    e.add_argument("--history", action="store_true",
                   help="start with the messages the publishers still hold")
    h = sp.add_parser("hz", help="rates once a second")
    h.add_argument("topic")
    h.add_argument("--duration", type=float, help="stop after S seconds")
    sp.add_parser("list", help="domains, or one domain's topics and pools (--domain)")
    args = ap.parse_args(argv)
    try:
        return {"echo": cmd_echo, "hz": cmd_hz, "list": cmd_list}[args.command](args)
    except Error as err:
        print(f"python3 -m shmbus {args.command}: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
