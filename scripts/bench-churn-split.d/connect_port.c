// What choosing a source port costs a connecting process under churn.
//
// A loopback echo server thread and a client loop: connect, 1 byte each way,
// the client closes first (so the TIME_WAIT sockets pile up on the connecting
// side, as they do on a proxy's backend side when it passes the client's FIN
// on). Two ways to get a source port, alternated in blocks:
//   kernel  connect() on an unbound socket: the kernel searches its ephemeral
//           range (net.ipv4.ip_local_port_range) among the TIME_WAIT sockets;
//   range   SO_REUSEADDR and bind() to the next port of a range of our own
//           (outside the ephemeral range: a port bound this way and left in
//           TIME_WAIT is skipped by every other process's kernel search until
//           it expires, so taking ports from the ephemeral range would starve
//           the host's other clients), then connect().
// Prints the client thread's CPU per connection (getrusage RUSAGE_THREAD; on
// loopback it includes the handshake's processing run in the caller's
// context) and the time spent in bind()+connect().
//
// Build and run (README, "Issue 11 goals: latest runs", churn CPU):
//   gcc -O2 -o /tmp/connect_port scripts/bench-churn-split.d/connect_port.c -lpthread
//   /tmp/connect_port [connections per block, default 30000] [BLOCKS] [LOW-HIGH]
// BLOCKS says which way each block takes its ports, k (kernel) or r (range):
// default krkr. LOW-HIGH is the range of our own (default 10000-29999);
// `60000 rrk 32768-60999` (with no TIME_WAIT socket left from an earlier run)
// shows what binding in the ephemeral range does to the kernel's search.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static volatile int server_port;

static void* echo_server(void* arg) {
  (void)arg;
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in s = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof s;
  if (l < 0 || bind(l, (struct sockaddr*)&s, sizeof s) < 0 || listen(l, 4096) < 0 ||
      getsockname(l, (struct sockaddr*)&s, &sl) < 0) {
    perror("echo server");
    exit(1);
  }
  server_port = ntohs(s.sin_port);
  for (;;) {
    int c = accept(l, NULL, NULL);
    if (c < 0) continue;
    char b[16];
    ssize_t n = read(c, b, sizeof b);
    if (n > 0 && write(c, b, (size_t)n) < 0) perror("echo write");
    (void)!read(c, b, sizeof b);  // the client's FIN
    close(c);
  }
  return NULL;
}

static double now_s(clockid_t id) {
  struct timespec t;
  clock_gettime(id, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static unsigned range_low = 10000, range_high = 29999;  // below Debian's 32768-60999

static void block(int range, int n, const struct sockaddr_in* dst) {
  static unsigned next = 0;
  if (next == 0) next = range_low;
  long retries = 0;
  double in_connect = 0;
  double cpu0 = now_s(CLOCK_THREAD_CPUTIME_ID), wall0 = now_s(CLOCK_MONOTONIC);
  for (int i = 0; i < n;) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    double t0 = now_s(CLOCK_MONOTONIC);
    if (range) {
      int one = 1;
      setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      for (;;) {
        struct sockaddr_in src = {.sin_family = AF_INET, .sin_port = htons((unsigned short)next)};
        next = next == range_high ? range_low : next + 1;
        if (bind(s, (struct sockaddr*)&src, sizeof src) == 0) break;
        ++retries;
      }
    }
    int rc = connect(s, (const struct sockaddr*)dst, sizeof *dst);
    in_connect += now_s(CLOCK_MONOTONIC) - t0;
    if (rc < 0) {
      if (errno != EADDRNOTAVAIL) {
        perror("connect");
        exit(1);
      }
      ++retries;  // that port's TIME_WAIT socket to this server is too recent to reuse
      close(s);
      continue;
    }
    char c = 'x';
    if (write(s, &c, 1) != 1 || read(s, &c, 1) != 1) {
      perror("exchange");
      exit(1);
    }
    close(s);
    ++i;
  }
  double cpu = now_s(CLOCK_THREAD_CPUTIME_ID) - cpu0, wall = now_s(CLOCK_MONOTONIC) - wall0;
  printf("%-6s %d conns  %6.0f conn/s  client CPU %5.2f us/conn  bind+connect %5.2f us/conn  retries %ld\n",
         range ? "range" : "kernel", n, n / wall, cpu / n * 1e6, in_connect / n * 1e6, retries);
  fflush(stdout);
}

int main(int argc, char** argv) {
  int n = argc > 1 ? atoi(argv[1]) : 30000;
  const char* blocks = argc > 2 ? argv[2] : "krkr";
  if (argc > 3 && (sscanf(argv[3], "%u-%u", &range_low, &range_high) != 2 || range_low == 0 ||
                   range_high < range_low || range_high > 65535)) {
    fprintf(stderr, "range: LOW-HIGH, e.g. 10000-29999\n");
    return 2;
  }
  pthread_t t;
  pthread_create(&t, NULL, echo_server, NULL);
  while (!server_port) usleep(1000);
  struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((unsigned short)server_port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  for (const char* b = blocks; *b; ++b) block(*b == 'r', n, &dst);
  return 0;
}
