// Kernel forwarding of established sessions (README, "Data path"): an
// sk_skb verdict program on a SOCKHASH. Every socket of a session handed to
// the kernel is in `active` (which runs this program on the bytes it
// receives) and in `targets` (where its peer's bytes are redirected to, to
// its egress); `links` says, per socket cookie, which socket is its peer.
// Userspace inserts links and targets before `active`, so the program never
// runs for a socket whose peer is not there yet.
//
// The kernel queues redirected bytes for the peer without looking at the
// peer's window (the receive side is freed at once), so a slow reader would
// let a fast sender fill kernel memory. The program counts the bytes it
// redirects per socket and tells userspace through the `events` ring buffer
// each time another `report_every` bytes went through; userspace then
// compares with what the peer's socket has taken, grants more `credit` or
// takes the session back (proxy/kernel_path.h). The credit is what makes
// the bound hold whenever userspace looks: a socket whose next bytes would
// pass it is held by the program itself, at once.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
  __uint(type, BPF_MAP_TYPE_SOCKHASH);
  __uint(max_entries, 1024);  // set by userspace before loading
  __type(key, __u64);         // socket cookie
  __type(value, __u64);       // socket (fd on update)
} targets SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_SOCKHASH);
  __uint(max_entries, 1024);
  __type(key, __u64);
  __type(value, __u64);
} active SEC(".maps");

struct link {
  __u64 peer;        // cookie of the socket this socket's bytes go to
  __u64 redirected;  // bytes redirected so far
  __u64 report_at;   // the next event when `redirected` reaches this
  __u64 trimmed;     // bytes TCP passed twice (see trim_seen), cut off
  __u32 next_seq;    // TCP sequence number after the last byte seen
  __u32 seq_known;   // next_seq is set
  __u32 broken;      // a skb could not be trimmed: userspace closes the session
  __u32 pad;
};

// Only what the program reads of the kernel's sk_buff, TCP control block
// and TCP socket; libbpf relocates the offsets against the running
// kernel's BTF.
struct sk_buff___vp {
  char cb[48];
  void *sk;  // struct sock *, set while the program runs (tcp_read_skb)
} __attribute__((preserve_access_index));
struct tcp_skb_cb___vp {
  __u32 seq;
} __attribute__((preserve_access_index));
struct tcp_sock___vp {
  __u32 copied_seq;  // the next byte no reader has taken
} __attribute__((preserve_access_index));

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(map_flags, BPF_F_NO_PREALLOC);  // memory for the sessions there are, not for max_entries
  __uint(max_entries, 1024);
  __type(key, __u64);
  __type(value, struct link);
} links SEC(".maps");

// Sockets taken back to userspace (proxy/session.cpp, take_back): their
// bytes are passed to their own receive side (SK_PASS: the psock's ingress
// queue, which recv() reads), no longer redirected. Userspace must not take
// a socket out of `active` while bytes may arrive: the kernel drops an skb
// that its receive path took off the queue while the verdict program was
// being detached (sk_psock_verdict_recv's verdict defaults to SK_DROP when
// it finds no program), so a session stays in the maps until it closes.
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(max_entries, 1024);
  __type(key, __u64);
  __type(value, __u8);
} held SEC(".maps");

// Per socket: the program redirects while the socket's `redirected` count
// stays within this; bytes past it are held (the socket goes into `held`
// and the event tells userspace). No entry: no limit (the start-up
// self-test).
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(max_entries, 1024);
  __type(key, __u64);
  __type(value, __u64);
} credit SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 64 * 1024);
} events SEC(".maps");

// Set by userspace before loading.
const volatile __u64 report_every = 256 * 1024;
// Reports the ring buffer had no room for: a worker that did not read it
// for a while (stopped, starved of CPU) while hundreds of sessions streamed
// lets it fill, and each socket reports up to ten times before its credit
// holds it. Userspace reads this after draining the ring and, when it grew,
// looks at every session itself (proxy/worker.cpp, on_kernel_events): a
// socket held at its credit whose report was dropped would otherwise wait
// for a take-back that never comes.
__u64 reports_lost = 0;
// Tests only (VIPPROXY_TEST_FAIL_CUTS, proxy/kernel_path.h): every cut of a
// repeated head fails, so that the close of a session whose bytes the
// program cannot account for can be tested; such a skb is not made on
// purpose otherwise. 0 in production.
const volatile __u32 fail_cuts = 0;

// The kernel hands this program whole skbs (tcp_read_skb, net/ipv4/tcp.c,
// which unlike tcp_recvmsg keeps no offset into a skb), but TCP queues a
// retransmitted segment that partly overlaps bytes already received whole,
// with its start before rcv_nxt (tcp_data_queue, "Partial packet"); a
// normal reader skips the overlap by sequence number. Passed on whole, the
// overlap would reach the peer twice (README, "Why the kernel path is
// opt-in"; tests/integration/test_kernel_overlap_netns.py makes such a
// segment). So the program remembers where the last skb of each socket
// ended and cuts off what comes again. The first skb it sees of a socket
// is measured against what userspace read before the hand-over (the
// socket's copied_seq, which the kernel moves only after this program has
// judged the skb): a retransmission overlapping the last bytes read in
// userspace was passed on whole before, those bytes twice. Only a partial
// overlap is cut there: TCP never queues a segment that is all old, and a
// value that makes no sense leaves the skb as it is. 1: go on; -1: all of
// it came before; 0: it could not be trimmed. Reading the kernel's skb and
// socket needs CAP_PERFMON when the program is loaded
// (bpf_probe_read_kernel).
static __always_inline int trim_seen(struct __sk_buff *skb, struct link *l) {
  const struct sk_buff___vp *k = (const void *)skb;
  const struct tcp_skb_cb___vp *cb = (const void *)k->cb;
  __u32 seq = 0;
  if (bpf_probe_read_kernel(&seq, sizeof seq, &cb->seq) != 0) return 0;
  const __u32 len = skb->len;
  __s32 over = 0;
  if (l->seq_known) {
    over = (__s32)(l->next_seq - seq);
    if (over > 0 && (__u32)over >= len) return -1;  // all seen before
  } else {
    void *sk = 0;
    __u32 copied = 0;
    if (bpf_probe_read_kernel(&sk, sizeof sk, &k->sk) == 0 && sk &&
        bpf_probe_read_kernel(&copied, sizeof copied, &((const struct tcp_sock___vp *)sk)->copied_seq) == 0) {
      over = (__s32)(copied - seq);
      if (over < 0 || (__u32)over >= len) over = 0;
    }
  }
  if (over > 0) {
    if (fail_cuts) return 0;
    __u32 left = (__u32)over;
    // sk_skb_adjust_room cuts at most 0xfff bytes per call.
    for (int i = 0; i < 64 && left > 0; ++i) {
      __u32 n = left > 0xfff ? 0xfff : left;
      if (bpf_skb_adjust_room(skb, -(__s32)n, 0, 0) != 0) return 0;
      left -= n;
    }
    if (left > 0) return 0;
    l->trimmed += (__u32)over;
  }
  l->next_seq = seq + len;
  l->seq_known = 1;
  return 1;
}

static __always_inline void report(__u64 *cookie) {
  if (bpf_ringbuf_output(&events, cookie, sizeof *cookie, 0) != 0) __sync_fetch_and_add(&reports_lost, 1);
}

SEC("sk_skb")
int forward(struct __sk_buff *skb) {
  // A zero-length skb must be dropped: passed, it breaks the peer (EPIPE).
  if (skb->len == 0) return SK_DROP;
  __u64 cookie = bpf_get_socket_cookie(skb);
  struct link *l = bpf_map_lookup_elem(&links, &cookie);
  if (!l) return SK_DROP;  // not a session of ours (never inserted so)
  int t = trim_seen(skb, l);
  if (t < 0) return SK_DROP;  // every byte of it was passed on before
  if (t == 0) {
    // Cannot tell what is new: the session is closed with an error rather
    // than let a byte through twice.
    l->broken = 1;
    report(&cookie);
    return SK_DROP;
  }
  if (bpf_map_lookup_elem(&held, &cookie)) return SK_PASS;
  __u64 *limit = bpf_map_lookup_elem(&credit, &cookie);
  if (limit && l->redirected + skb->len > *limit) {
    // Out of credit: from this skb on the socket keeps its bytes, as if
    // userspace had held it; these go to its own receive side, after what
    // went to the peer, and userspace takes the session back.
    __u8 one = 1;
    if (bpf_map_update_elem(&held, &cookie, &one, BPF_ANY) == 0) {
      report(&cookie);
      return SK_PASS;
    }
  }
  __u64 total = __sync_fetch_and_add(&l->redirected, skb->len) + skb->len;
  if (total >= l->report_at) {
    l->report_at = total + report_every;
    report(&cookie);
  }
  __u64 peer = l->peer;
  return bpf_sk_redirect_hash(skb, &targets, &peer, 0);
}

// Only GPL-compatible programs may use some helpers; none used here needs
// it, but the kernel logs a taint warning for other licenses.
char LICENSE[] SEC("license") = "Dual BSD/GPL";
