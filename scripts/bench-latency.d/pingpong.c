/* Round-trip helper for scripts/bench-latency (loopback only).
 *
 *   pingpong echo PORT          echo server on 127.0.0.1:PORT, a thread per
 *                               connection, blocking read()/write(): the
 *                               cheapest backend there is, so what a proxy
 *                               adds is not hidden under the backend's cost
 *   pingpong ping PORT N        one connection to 127.0.0.1:PORT
 *                               (TCP_NODELAY); 200 warm-up round trips, then
 *                               N round trips of 1 byte, each timed on
 *                               CLOCK_MONOTONIC; prints
 *                               "n=N min_us=.. p50_us=.. p90_us=.. p99_us=.."
 *
 * C rather than Python: Python's own cost per round trip (about 10 us) is
 * larger than what the kernel path adds, and its jitter would drown it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in loopback(int port) {
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((unsigned short)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return sa;
}

static void* serve(void* arg) {
  int fd = (int)(long)arg, one = 1;
  char buf[65536];
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    for (ssize_t off = 0; off < n;) {
      ssize_t m = write(fd, buf + off, (size_t)(n - off));
      if (m <= 0) goto out;
      off += m;
    }
  }
out:
  close(fd);
  return NULL;
}

static int echo(int port) {
  int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
  struct sockaddr_in sa = loopback(port);
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(l, (struct sockaddr*)&sa, sizeof sa) || listen(l, 128)) {
    perror("pingpong echo: bind/listen");
    return 1;
  }
  for (;;) {
    int c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0) continue;
    pthread_t t;
    if (pthread_create(&t, NULL, serve, (void*)(long)c) == 0) pthread_detach(t);
    else close(c);
  }
}

static int cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int ping(int port, long n) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
  struct sockaddr_in sa = loopback(port);
  if (connect(fd, (struct sockaddr*)&sa, sizeof sa)) {
    perror("pingpong ping: connect");
    return 1;
  }
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct timeval tv = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  double* s = malloc(sizeof(double) * (size_t)n);
  char c = 'x';
  for (long i = -200; i < n; ++i) {
    double t0 = now_us();
    if (write(fd, &c, 1) != 1 || read(fd, &c, 1) != 1) {
      fprintf(stderr, "pingpong ping: round trip %ld failed\n", i);
      return 1;
    }
    if (i >= 0) s[i] = now_us() - t0;
  }
  close(fd);
  qsort(s, (size_t)n, sizeof *s, cmp);
  printf("n=%ld min_us=%.2f p50_us=%.2f p90_us=%.2f p99_us=%.2f\n", n, s[0], s[n / 2], s[n * 9 / 10],
         s[n * 99 / 100]);
  free(s);
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 3 && !strcmp(argv[1], "echo")) return echo(atoi(argv[2]));
  if (argc == 4 && !strcmp(argv[1], "ping")) return ping(atoi(argv[2]), atol(argv[3]));
  fprintf(stderr, "usage: pingpong echo PORT | pingpong ping PORT N\n");
  return 2;
}
