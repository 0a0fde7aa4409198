# Sends crafted packets for hostile-input tests (python3 has raw sockets; Node has none).
#   inject.py udp SRC_ADDR DST_ADDR PORT HEX...   one UDP datagram per HEX payload
#   inject.py raw IFNAME HEX...                   one Ethernet frame per HEX (AF_PACKET)
import socket
import sys

mode = sys.argv[1]
if mode == "udp":
    src, dst, port = sys.argv[2], sys.argv[3], int(sys.argv[4])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((src, 0))
    for h in sys.argv[5:]:
        s.sendto(bytes.fromhex(h), (dst, port))
elif mode == "raw":
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((sys.argv[2], 0))
    for h in sys.argv[3:]:
        s.send(bytes.fromhex(h))
else:
    sys.exit("usage: inject.py udp|raw ...")
