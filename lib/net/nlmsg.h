/* Netlink messages, built and read: the few helpers rtnetlink requests need
 * (netlink.c).  Our own, not libmnl's: Debian ships libmnl as a shared
 * library only, and `cell`, which brings up every container's loopback, is
 * linked statically so that no dynamic loader runs at each container start.
 *
 * A message is built in a caller's buffer of NL_MSG_MAX bytes.  An
 * attribute that would not fit marks the message overflowed and is not
 * written; nl_msg_send refuses such a message (EMSGSIZE), so a caller
 * checks once.
 * Internal to lib/net. */
#ifndef CELL_NLMSG_H
#define CELL_NLMSG_H

#include <linux/netlink.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NL_MSG_MAX 8192

struct nl_msg {
  struct nlmsghdr *h;
  size_t cap;
  bool overflow;
};

/* A new message of type and flags at the start of buf, with a family
 * header of hdrlen bytes (ifinfomsg, ifaddrmsg, rtmsg: far less than the
 * buffer), zeroed: returned for the caller to fill. */
void *nl_msg_start(struct nl_msg *m, char (*buf)[NL_MSG_MAX], uint16_t type,
                   uint16_t flags, size_t hdrlen);
/* Another family header inside the message (a veth peer's ifinfomsg);
 * NULL on overflow. */
void *nl_msg_reserve(struct nl_msg *m, size_t len);
void nl_msg_put(struct nl_msg *m, uint16_t type, size_t len, const void *data);
void nl_msg_put_u32(struct nl_msg *m, uint16_t type, uint32_t v);
void nl_msg_put_strz(struct nl_msg *m, uint16_t type, const char *s);
/* A nested attribute: the attributes put until nl_msg_nest_end go in it. */
struct nlattr *nl_msg_nest_start(struct nl_msg *m, uint16_t type);
void nl_msg_nest_end(struct nl_msg *m, struct nlattr *nest);

/* ---- reading -------------------------------------------------------------- */

/* The attributes of a payload: from `at` (the first byte after the family
 * header), len bytes.  nl_attr_next returns NULL past the last whole one,
 * so a truncated or lying length ends the walk, never overruns it. */
const struct nlattr *nl_attr_first(const void *at, size_t len);
const struct nlattr *nl_attr_next(const struct nlattr *a, const void *end);
static inline uint16_t nl_attr_type(const struct nlattr *a) {
  return a->nla_type & NLA_TYPE_MASK;
}
static inline const void *nl_attr_data(const struct nlattr *a) {
  return (const char *)a + NLA_HDRLEN;
}
static inline size_t nl_attr_len(const struct nlattr *a) {
  return a->nla_len - NLA_HDRLEN;
}
/* The first attribute of message h after its family header of hdrlen
 * bytes, and where h ends. */
const struct nlattr *nl_msg_attrs(const struct nlmsghdr *h, size_t hdrlen);
static inline const void *nl_msg_end(const struct nlmsghdr *h) {
  return (const char *)h + h->nlmsg_len;
}
static inline const void *nl_attr_end(const struct nlattr *a) {
  return (const char *)a + a->nla_len;
}
#define nl_attr_for_each(a, h, hdrlen)                                       \
  for ((a) = nl_msg_attrs((h), (hdrlen)); (a) != NULL;                       \
       (a) = nl_attr_next((a), nl_msg_end(h)))
/* The attributes nested in a. */
#define nl_attr_for_each_nested(n, a)                                        \
  for ((n) = nl_attr_first(nl_attr_data(a), nl_attr_len(a)); (n) != NULL;    \
       (n) = nl_attr_next((n), nl_attr_end(a)))
/* A u32 attribute's value, false when its payload is not 4 bytes. */
bool nl_attr_u32(const struct nlattr *a, uint32_t *out);
/* A string attribute into out (NUL-terminated, cut to size), false when it
 * is empty. */
bool nl_attr_str(const struct nlattr *a, char *out, size_t size);

/* ---- a socket ------------------------------------------------------------- */

/* Bind fd (AF_NETLINK) to a port the kernel picks; *portid gets it. */
int nl_sock_bind(int fd, uint32_t *portid);
/* Send m to the kernel; -errno on failure. */
int nl_msg_send(int fd, const struct nl_msg *m);
/* Read one datagram of the kernel into buf: its length, or -errno
 * (-ENOSPC when it did not fit, -EPROTO when not from the kernel). */
long nl_recv(int fd, void *buf, size_t cap);

/* Feed the messages of a datagram that answer request seq on portid to
 * cb (data messages only).  Returns 1 when the answer is complete (the
 * kernel's ACK or the end of a dump), 0 when more is to come, -errno for
 * the kernel's error or a malformed answer. */
typedef void (*nl_msg_cb)(const struct nlmsghdr *h, void *data);
int nl_run(const void *buf, size_t len, uint32_t seq, uint32_t portid,
           nl_msg_cb cb, void *data);

#endif
