// The floor of a userspace TAP + UDP overlay, for bench/systems/null-relay.ts: per host one thread
// that moves frames between a TAP and a UDP socket and does nothing else. No tables, no checks, no
// offloads, one static peer: a TAP frame gets an 8-byte VXLAN header (VNI 4096) and goes to the
// peer; a datagram loses its first 8 bytes and goes into the TAP. Whatever tapmesh costs beyond
// this relay is its own; what this relay costs is the kernel's price for the structure (two
// syscalls per packet per host, and a wake-up whenever the thread sleeps).
// usage: null-relay TAPNAME LOCAL_IPV4 PEER_IPV4 PORT block|spin
//   block: sleep in poll() until a descriptor is readable (an idle relay costs nothing);
//   spin:  never sleep while packets come at least every SPIN_HOLD_S seconds (a core per relay);
//          after that much silence, one poll() (so that a spinning relay idle in the bench does
//          not take the cores from the systems measured before and after it).
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { VXLAN_HDR = 8, MAX_FRAME = 65536, BURST = 64, SPIN_HOLD_S = 2 };

static time_t Now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &t);
  return t.tv_sec;
}

int main(int argc, char** argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: null-relay TAPNAME LOCAL_IPV4 PEER_IPV4 PORT block|spin\n");
    return 2;
  }
  int tap = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  strncpy(ifr.ifr_name, argv[1], IFNAMSIZ - 1);
  if (tap < 0 || ioctl(tap, TUNSETIFF, &ifr) < 0) {
    perror("null-relay: TAP");
    return 1;
  }
  int u = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  struct sockaddr_in me, peer;
  memset(&me, 0, sizeof me);
  me.sin_family = AF_INET;
  me.sin_port = htons((unsigned short)atoi(argv[4]));
  peer = me;
  if (inet_pton(AF_INET, argv[2], &me.sin_addr) != 1 || inet_pton(AF_INET, argv[3], &peer.sin_addr) != 1 ||
      bind(u, (struct sockaddr*)&me, sizeof me) < 0) {
    perror("null-relay: UDP");
    return 1;
  }
  int spin = strcmp(argv[5], "spin") == 0;
  static unsigned char buf[VXLAN_HDR + MAX_FRAME];
  time_t last = 0;
  for (;;) {
    if (!spin || Now() - last > SPIN_HOLD_S) {
      struct pollfd p[2] = {{tap, POLLIN, 0}, {u, POLLIN, 0}};
      if (poll(p, 2, -1) < 0) continue;
      if (spin) last = Now();
    }
    for (int i = 0; i < BURST; i++) {
      ssize_t n = read(tap, buf + VXLAN_HDR, MAX_FRAME);
      if (n <= 0) break;
      if (spin) last = Now();
      memset(buf, 0, VXLAN_HDR);
      buf[0] = 0x08;  // I flag; VNI 4096 = 0x001000 in bytes 4-6
      buf[5] = 0x10;
      sendto(u, buf, (size_t)n + VXLAN_HDR, 0, (struct sockaddr*)&peer, sizeof peer);
    }
    for (int i = 0; i < BURST; i++) {
      ssize_t n = recv(u, buf, sizeof buf, 0);
      if (n <= 0) break;
      if (spin) last = Now();
      if (n > VXLAN_HDR && write(tap, buf + VXLAN_HDR, (size_t)n - VXLAN_HDR) < 0) continue;
    }
  }
}
