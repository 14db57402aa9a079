/* Anti-spoofing on bridge ports through libnftables (bridge-filter.h). */
#include "net/bridge-filter.h"

#include <arpa/inet.h>
#include <errno.h>
#include <nftables/libnftables.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/util.h"

/* nftables identifiers are [A-Za-z_.][A-Za-z0-9_./-]*; "cell-" and
 * "port-" put a letter first.  A stricter set than the parser's: no `/`,
 * and nothing that could end a name or start a new command. */
static bool name_ok(const char *s) {
  if (!*s)
    return false;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
          (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == '-'))
      return false;
  return true;
}

static int check_names(const char *bridge, const char *port, cell_error **err) {
  const char *bad = !name_ok(bridge) ? bridge : port && !name_ok(port) ? port : NULL;
  if (bad)
    return cell_fail(err, 0, "`%s`: nftables takes only names of letters, "
                     "digits, `.`, `_` and `-`", bad);
  return 0;
}

static void mac_string(const uint8_t m[6], char buf[18]) {
  snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3],
           m[4], m[5]);
}

/* fe80::/64 with the modified EUI-64 of the MAC: the link-local address
 * the kernel gives the interface (addr_gen_mode eui64, a new namespace's
 * default). */
static struct net_ip link_local_of(const uint8_t m[6]) {
  struct net_ip ip = {.family = AF_INET6};
  const uint8_t b[16] = {0xfe, 0x80, 0, 0, 0, 0, 0, 0, m[0] ^ 0x02, m[1],
                         m[2], 0xff, 0xfe, m[3], m[4], m[5]};
  memcpy(ip.bytes, b, sizeof(b));
  return ip;
}

/* An IPv6 address as the 128-bit integer a raw payload match wants. */
static void ip6_hex(const struct net_ip *ip, char buf[35]) {
  char *p = buf + sprintf(buf, "0x");
  for (int i = 0; i < 16; i++)
    p += sprintf(p, "%02x", ip->bytes[i]);
}

/* The table with its map and its two base chains, whose one rule each is
 * re-made (flush, add) so that running this again never doubles it.
 * Prerouting sees every frame a port sends before the bridge learns its
 * source MAC; input also sees the frames for the bridge's own link-local
 * groups (01:80:c2:00:00:0X), which skip prerouting but are learnt from. */
static void table_commands(FILE *f, const char *t) {
  fprintf(f,
          "add table bridge %1$s\n"
          "add map bridge %1$s ports { type ifname : verdict; }\n",
          t);
  const char *hooks[] = {"prerouting", "input"};
  for (size_t i = 0; i < 2; i++)
    fprintf(f,
            "add chain bridge %1$s %2$s { type filter hook %2$s priority -200; "
            "policy accept; }\n"
            "flush chain bridge %1$s %2$s\n"
            "add rule bridge %1$s %2$s iifname vmap @ports\n",
            t, hooks[i]);
}

/* No anonymous set (`{ a, b }`) in a port's rules: nftables reads every
 * set of the table at each change, and a few per port would make each
 * change cost tens of milliseconds with a hundred ports. */
static void arp_rules(FILE *f, const char *rule, const char *mac,
                      const struct net_ip *ipv4) {
  char ip[INET6_ADDRSTRLEN];
  net_ip_to_string(ipv4, ip, sizeof(ip));
  /* Ethernet and IPv4 sizes, as the kernel wants them too: the offsets of
   * `arp saddr` are those of that layout.  Operations 1 and 2: request,
   * reply. */
  fprintf(f,
          "%s ether type arp arp htype 1 arp ptype ip arp hlen 6 arp plen 4 "
          "arp operation 1-2 arp saddr ether %s arp saddr ip %s accept\n",
          rule, mac, ip);
  fprintf(f, "%s ether type ip ip saddr %s accept\n", rule, ip);
}

/* DHCP before the port has its address (a DISCOVER from 0.0.0.0) is let
 * through, but only with the port's own MAC as the client's hardware
 * address (chaddr: bytes 28 to 33 of the message, after the 8 of UDP's
 * header), wherever it comes from: a lease is asked for oneself. */
static void dhcp_rules(FILE *f, const char *rule, const uint8_t m[6]) {
  char macx[13];
  snprintf(macx, sizeof(macx), "%02x%02x%02x%02x%02x%02x", m[0], m[1], m[2],
           m[3], m[4], m[5]);
  fprintf(f, "%s ether type ip udp dport 67 @th,288,48 != 0x%s drop\n", rule,
          macx);
  fprintf(f, "%s ether type ip ip saddr 0.0.0.0 ip daddr 255.255.255.255 "
          "udp sport 68 udp dport 67 accept\n", rule);
}

/* Neighbour discovery: no router advertisements (an instance is no
 * router; the host takes them on its bridge when not forwarding) and no
 * redirects (types 134, 137).  A router solicitation (133) is let through,
 * so that a guest coming up gets its network's advertisement at once
 * rather than at the next periodic one; like a neighbour solicitation or
 * advertisement (135, 136), it must have no extension header and at most
 * the one link-layer address option, which must be the port's MAC: the
 * receiver learns the sender's MAC from it, and the kernel uses the first
 * such option it finds, so a second one would slip by.  own[] are the
 * port's IPv6 addresses as raw integers. */
static void ndp_rules(FILE *f, const char *rule, const uint8_t m[6],
                      char own[][35], size_t n_own) {
  char macx[13];
  snprintf(macx, sizeof(macx), "%02x%02x%02x%02x%02x%02x", m[0], m[1], m[2],
           m[3], m[4], m[5]);
  const char *nd = "ether type ip6 meta l4proto icmpv6 icmpv6 type";
  fprintf(f, "%s %s 134 drop\n", rule, nd);
  fprintf(f, "%s %s 137 drop\n", rule, nd);
  fprintf(f, "%s %s 133-136 ip6 nexthdr != icmpv6 drop\n", rule, nd);
  /* A solicitation is 8 bytes, then its option: type 1 (source
   * link-layer address), length 1 (8 bytes), the MAC. */
  fprintf(f, "%s %s 133 ip6 length != 8 ip6 length != 16 drop\n", rule, nd);
  fprintf(f, "%s %s 133 ip6 length 16 @th,64,64 != 0x0101%s drop\n", rule,
          nd, macx);
  fprintf(f, "%s %s 135-136 ip6 length != 24 ip6 length != 32 drop\n", rule,
          nd);
  /* The option after the 24 bytes of the message: type 1 (source) or 2
   * (target link-layer address), length 1 (8 bytes), the MAC. */
  fprintf(f, "%s %s 135 ip6 length 32 @th,192,64 != 0x0101%s drop\n", rule,
          nd, macx);
  fprintf(f, "%s %s 136 ip6 length 32 @th,192,64 != 0x0201%s drop\n", rule,
          nd, macx);
  /* The target of an advertisement: bytes 8 to 23 of the message. */
  fprintf(f, "%s %s 136", rule, nd);
  for (size_t i = 0; i < n_own; i++)
    fprintf(f, " @th,64,128 != %s", own[i]);
  fprintf(f, " drop\n");
}

static void ipv6_rules(FILE *f, const char *rule, const uint8_t m[6],
                       const struct net_ip *ipv6) {
  struct net_ip own[2] = {link_local_of(m)};
  size_t n = 1;
  if (ipv6)
    own[n++] = *ipv6;
  char hex[2][35];
  for (size_t i = 0; i < n; i++)
    ip6_hex(&own[i], hex[i]);
  ndp_rules(f, rule, m, hex, n);
  for (size_t i = 0; i < n; i++) {
    char a[INET6_ADDRSTRLEN];
    net_ip_to_string(&own[i], a, sizeof(a));
    fprintf(f, "%s ether type ip6 ip6 saddr %s accept\n", rule, a);
  }
  /* Duplicate address detection of the link-local address: a neighbour
   * solicitation from `::`, and the multicast listener report (143) that
   * goes with it, claim no address. */
  fprintf(f, "%s ether type ip6 ip6 saddr :: meta l4proto icmpv6 icmpv6 type "
          "135 accept\n", rule);
  fprintf(f, "%s ether type ip6 ip6 saddr :: meta l4proto icmpv6 icmpv6 type "
          "143 accept\n", rule);
}

char *bridge_filter_port_commands(const char *bridge,
                                  const struct bridge_port_identity *id,
                                  bool with_table, cell_error **err) {
  if (check_names(bridge, id->port, err) < 0)
    return NULL;
  cleanup_free char *table = xasprintf("cell-%s", bridge);
  cleanup_free char *chain = xasprintf("port-%s", id->port);
  cleanup_free char *rule = xasprintf("add rule bridge %s %s", table, chain);
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f)
    abort();
  char mac[18];
  mac_string(id->mac, mac);
  if (with_table)
    table_commands(f, table);
  fprintf(f, "add chain bridge %s %s\nflush chain bridge %s %s\n", table, chain,
          table, chain);
  fprintf(f, "%s ether saddr != %s drop\n", rule, mac);
  if (id->ipv4) {
    dhcp_rules(f, rule, id->mac);
    arp_rules(f, rule, mac, id->ipv4);
  }
  ipv6_rules(f, rule, id->mac, id->ipv6);
  fprintf(f, "%s drop\n", rule);
  fprintf(f, "add element bridge %s ports { \"%s\" : jump %s }\n", table,
          id->port, chain);
  fclose(f);
  return text;
}

/* The first line of libnftables' error text, without its "Error: ". */
static char *first_error_line(const char *text) {
  if (!text || !*text)
    return xstrdup("failed");
  const char *e = strstr(text, "Error: ");
  const char *start = e ? e + strlen("Error: ") : text;
  return xstrndup(start, strcspn(start, "\n"));
}

static void nft_ctx_freep(struct nft_ctx **c) {
  if (*c)
    nft_ctx_free(*c);
}

/* One transaction: all the commands of text, or none. */
static int run_here(const char *text, cell_error **err) {
  __attribute__((cleanup(nft_ctx_freep))) struct nft_ctx *ctx =
      nft_ctx_new(NFT_CTX_DEFAULT);
  if (!ctx)
    return cell_fail(err, ENOMEM, "nftables: no context");
  if (nft_ctx_buffer_output(ctx) < 0 || nft_ctx_buffer_error(ctx) < 0)
    return cell_fail(err, ENOMEM, "nftables: no output buffer");
  if (nft_run_cmd_from_buffer(ctx, text) == 0)
    return 0;
  cleanup_free char *why = first_error_line(nft_ctx_get_error_buffer(ctx));
  return cell_fail(err, 0, "nftables: %s", why);
}

/* The child of run(): the transaction, its error on the pipe. */
static void run_child(const char *text, int out) {
  cell_error *e = NULL;
  if (run_here(text, &e) == 0)
    _exit(0);
  size_t len = strlen(e->msg);
  _exit(write(out, e->msg, len) == (ssize_t)len ? 1 : 2);
}

/* libnftables exits the whole process when it cannot open its netlink
 * socket (out of fds, say), as the nft tool would: each transaction runs
 * in a child, so that this never takes celld with it. */
static int run_begin(const char *text, pid_t *pid, int *rd, cell_error **err) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0)
    return cell_fail_errno(err, "nftables: pipe");
  cleanup_close int r = p[0], wr = p[1];
  *pid = fork();
  if (*pid < 0)
    return cell_fail_errno(err, "nftables: fork");
  if (*pid == 0)
    run_child(text, wr);
  *rd = steal_fd(&r);
  return 0;
}

/* The child's end; its error text when it failed. */
static int run_finish(pid_t pid, int rd, cell_error **err) {
  char why[512];
  size_t len = 0;
  ssize_t n;
  while (len < sizeof(why) - 1 &&
         ((n = read(rd, why + len, sizeof(why) - 1 - len)) > 0 ||
          (n < 0 && errno == EINTR)))
    len += n > 0 ? (size_t)n : 0;
  why[len] = '\0';
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      return cell_fail_errno(err, "nftables: wait");
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
    return 0;
  if (len > 0)
    return cell_fail(err, 0, "%s", why);
  return cell_fail(err, 0, "nftables: could not talk to the kernel (exit status %d)",
                   WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

static int run(const char *text, cell_error **err) {
  pid_t pid;
  int rd;
  if (run_begin(text, &pid, &rd, err) < 0)
    return -1;
  cleanup_close int rdfd = rd;
  return run_finish(pid, rdfd, err);
}

int bridge_filter_port_add_begin(const char *bridge,
                                 const struct bridge_port_identity *id,
                                 struct bridge_filter_job *job,
                                 cell_error **err) {
  *job = (struct bridge_filter_job){.pid = -1, .fd = -1};
  cleanup_free char *port_only =
      bridge_filter_port_commands(bridge, id, false, err);
  cleanup_free char *with_table =
      port_only ? bridge_filter_port_commands(bridge, id, true, err) : NULL;
  if (!with_table || run_begin(port_only, &job->pid, &job->fd, err) < 0)
    return cell_error_wrap(err, "filter port `%s` of bridge `%s`", id->port,
                           bridge);
  job->with_table = steal_pointer(&with_table);
  job->what = xasprintf("filter port `%s` of bridge `%s`", id->port, bridge);
  return 0;
}

/* Forget the job, its child reaped; the child's result in *err. */
static int job_reap(struct bridge_filter_job *job, cell_error **err) {
  cleanup_close int fd = job->fd;
  pid_t pid = job->pid;
  job->pid = job->fd = -1;
  return run_finish(pid, fd, err);
}

int bridge_filter_port_add_finish(struct bridge_filter_job *job,
                                  cell_error **err) {
  if (job->pid < 0)
    return 0;
  cleanup_free char *with_table = steal_pointer(&job->with_table);
  cleanup_free char *what = steal_pointer(&job->what);
  /* The table is there but for the first port: the port alone first, as
   * re-making the table's rule costs more than the whole port. */
  cleanup_error cell_error *no_table = NULL;
  if (job_reap(job, &no_table) == 0)
    return 0;
  if (run(with_table, err) < 0)
    return cell_error_wrap(err, "%s", what);
  return 0;
}

void bridge_filter_job_cancel(struct bridge_filter_job *job) {
  if (job->pid < 0)
    return;
  free(steal_pointer(&job->with_table));
  free(steal_pointer(&job->what));
  /* The child is waited for: what it added, the caller removes. */
  cleanup_error cell_error *ignored = NULL;
  job_reap(job, &ignored);
}

int bridge_filter_port_add(const char *bridge,
                           const struct bridge_port_identity *id,
                           cell_error **err) {
  struct bridge_filter_job job;
  if (bridge_filter_port_add_begin(bridge, id, &job, err) < 0)
    return -1;
  return bridge_filter_port_add_finish(&job, err);
}

int bridge_filter_port_remove(const char *bridge, const char *port,
                              cell_error **err) {
  if (check_names(bridge, port, err) < 0)
    return -1;
  /* The tolerant form (nftables 1.0.6 has no `destroy`: add, then delete,
   * which works whether they were there or not) only when the plain one
   * failed: a failed transaction costs the kernel ten times more. */
  cleanup_free char *plain = xasprintf(
      "delete element bridge cell-%1$s ports { \"%2$s\" }\n"
      "flush chain bridge cell-%1$s port-%2$s\n"
      "delete chain bridge cell-%1$s port-%2$s\n",
      bridge, port);
  cleanup_error cell_error *absent = NULL;
  if (run(plain, &absent) == 0)
    return 0;
  cleanup_free char *tolerant = xasprintf(
      "add table bridge cell-%1$s\n"
      "add map bridge cell-%1$s ports { type ifname : verdict; }\n"
      "add chain bridge cell-%1$s port-%2$s\n"
      "add element bridge cell-%1$s ports { \"%2$s\" : jump port-%2$s }\n"
      "delete element bridge cell-%1$s ports { \"%2$s\" }\n"
      "flush chain bridge cell-%1$s port-%2$s\n"
      "delete chain bridge cell-%1$s port-%2$s\n",
      bridge, port);
  if (run(tolerant, err) < 0)
    return cell_error_wrap(err, "remove the filter of port `%s` of bridge `%s`",
                           port, bridge);
  return 0;
}

int bridge_filter_remove(const char *bridge, cell_error **err) {
  if (check_names(bridge, NULL, err) < 0)
    return -1;
  cleanup_free char *text = xasprintf("add table bridge cell-%1$s\n"
                                      "delete table bridge cell-%1$s\n",
                                      bridge);
  if (run(text, err) < 0)
    return cell_error_wrap(err, "remove the port filters of bridge `%s`", bridge);
  return 0;
}
