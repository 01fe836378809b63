#!/usr/bin/env python3
# Forged packets for the source-validation tests, run inside a pod's network namespace.
#   forge.py send IFNAME DST_MAC SRC DST udp|tcp SPORT DPORT TOKEN [COUNT]
#     writes whole Ethernet frames on IFNAME (AF_PACKET): the pod's own stack never sees the
#     forged source, exactly as a tenant with CAP_NET_RAW would send it
#   forge.py sniff IFNAME MS TOKEN SPORT
#     prints "ready", counts the frames seen on IFNAME that carry TOKEN (UDP payload) or are a TCP
#     SYN from SPORT, and prints the count MS milliseconds after its stdin closes (the sender is
#     done: the time to wait does not depend on how long the processes took to start)
import ipaddress
import select
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def l4(proto: str, src: bytes, dst: bytes, sport: int, dport: int, token: bytes) -> tuple[bytes, int]:
    if proto == "udp":
        seg = struct.pack("!HHHH", sport, dport, 8 + len(token), 0) + token
        num = 17
    else:
        # a bare SYN (window 64240, no options): the sniffer knows it by its source port
        seg = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, 0x02, 64240, 0, 0)
        num = 6
    if len(src) == 4:
        pseudo = src + dst + struct.pack("!BBH", 0, num, len(seg))
    else:
        pseudo = src + dst + struct.pack("!IxxxB", len(seg), num)
    c = checksum(pseudo + seg)
    if proto == "udp" and c == 0:
        c = 0xFFFF
    off = 6 if proto == "udp" else 16
    return seg[:off] + struct.pack("!H", c) + seg[off + 2 :], num


def frame(dst_mac: str, src_mac: bytes, src: str, dst: str, proto: str, sport: int, dport: int, token: bytes) -> bytes:
    s = ipaddress.ip_address(src).packed
    d = ipaddress.ip_address(dst).packed
    seg, num = l4(proto, s, d, sport, dport, token)
    if len(s) == 4:
        hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(seg), 0x1234, 0, 64, num, 0, s, d)
        hdr = hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:]
        ethertype = 0x0800
    else:
        hdr = struct.pack("!IHBB16s16s", 6 << 28, len(seg), num, 64, s, d)
        ethertype = 0x86DD
    eth = bytes.fromhex(dst_mac.replace(":", "")) + src_mac + struct.pack("!H", ethertype)
    return eth + hdr + seg


def send(ifname: str, dst_mac: str, src: str, dst: str, proto: str, sport: str, dport: str, token: str, count: str = "3") -> None:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((ifname, 0))
    src_mac = sock.getsockname()[4]
    data = frame(dst_mac, src_mac, src, dst, proto, int(sport), int(dport), token.encode())
    for _ in range(int(count)):
        sock.send(data)
        time.sleep(0.02)


def matches(pkt: bytes, token: bytes, sport: int) -> bool:
    ethertype = struct.unpack("!H", pkt[12:14])[0]
    if ethertype == 0x0800:
        ihl = (pkt[14] & 0x0F) * 4
        num, body = pkt[23], pkt[14 + ihl :]
    elif ethertype == 0x86DD:
        num, body = pkt[20], pkt[54:]
    else:
        return False
    if num == 17:
        return token in body[8:]
    if num == 6 and len(body) >= 14:
        return struct.unpack("!H", body[:2])[0] == sport and body[13] & 0x12 == 0x02
    return False


def sniff(ifname: str, ms: str, token: str, sport: str) -> None:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((ifname, 0))
    print("ready", flush=True)
    end = None
    seen = 0
    watch = [sock, sys.stdin]
    while end is None or (left := end - time.monotonic()) > 0:
        ready = select.select(watch, [], [], None if end is None else left)[0]
        if sys.stdin in ready and not sys.stdin.buffer.read1(4096):
            watch = [sock]
            end = time.monotonic() + int(ms) / 1000
        if sock in ready:
            pkt, addr = sock.recvfrom(65535)
            if addr[2] != socket.PACKET_OUTGOING and matches(pkt, token.encode(), int(sport)):
                seen += 1
    print(seen, flush=True)


if __name__ == "__main__":
    {"send": send, "sniff": sniff}[sys.argv[1]](*sys.argv[2:])
