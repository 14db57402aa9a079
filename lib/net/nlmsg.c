/* Netlink messages, built and read (see nlmsg.h). */
#include "net/nlmsg.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

/* ---- building ------------------------------------------------------------- */

void *nl_msg_start(struct nl_msg *m, char (*buf)[NL_MSG_MAX], uint16_t type,
                   uint16_t flags, size_t hdrlen) {
  /* Family headers are a few dozen bytes: they always fit. */
  size_t len = NLMSG_HDRLEN + NLMSG_ALIGN(hdrlen);
  m->h = (struct nlmsghdr *)*buf;
  m->cap = NL_MSG_MAX;
  m->overflow = false;
  memset(m->h, 0, len);
  m->h->nlmsg_len = (uint32_t)len;
  m->h->nlmsg_type = type;
  m->h->nlmsg_flags = flags;
  return NLMSG_DATA(m->h);
}

/* Room for len more bytes (aligned), zeroed; NULL and overflow when the
 * buffer is too small. */
static void *grow(struct nl_msg *m, size_t len) {
  size_t at = NLMSG_ALIGN(m->h->nlmsg_len);
  if (m->overflow || len > m->cap || at > m->cap - NLMSG_ALIGN(len)) {
    m->overflow = true;
    return NULL;
  }
  void *p = (char *)m->h + at;
  memset(p, 0, NLMSG_ALIGN(len));
  m->h->nlmsg_len = (uint32_t)(at + NLMSG_ALIGN(len));
  return p;
}

void *nl_msg_reserve(struct nl_msg *m, size_t len) { return grow(m, len); }

void nl_msg_put(struct nl_msg *m, uint16_t type, size_t len, const void *data) {
  if (len > UINT16_MAX - NLA_HDRLEN) {
    m->overflow = true;
    return;
  }
  struct nlattr *a = grow(m, NLA_HDRLEN + len);
  if (a == NULL)
    return;
  a->nla_type = type;
  a->nla_len = (uint16_t)(NLA_HDRLEN + len);
  memcpy((char *)a + NLA_HDRLEN, data, len);
}

void nl_msg_put_u32(struct nl_msg *m, uint16_t type, uint32_t v) {
  nl_msg_put(m, type, sizeof(v), &v);
}

void nl_msg_put_strz(struct nl_msg *m, uint16_t type, const char *s) {
  nl_msg_put(m, type, strlen(s) + 1, s);
}

struct nlattr *nl_msg_nest_start(struct nl_msg *m, uint16_t type) {
  struct nlattr *a = grow(m, NLA_HDRLEN);
  if (a != NULL)
    a->nla_type = NLA_F_NESTED | type;
  return a;
}

void nl_msg_nest_end(struct nl_msg *m, struct nlattr *nest) {
  if (nest == NULL || m->overflow)
    return;
  size_t len = (size_t)((char *)m->h + m->h->nlmsg_len - (char *)nest);
  if (len > UINT16_MAX) {
    m->overflow = true;
    return;
  }
  nest->nla_len = (uint16_t)len;
}

/* ---- reading -------------------------------------------------------------- */

/* The attribute at `at` when a whole one fits before end, else NULL. */
static const struct nlattr *attr_at(const void *at, const void *end) {
  const char *p = at, *e = end;
  if (p > e || (size_t)(e - p) < NLA_HDRLEN)
    return NULL;
  const struct nlattr *a = at;
  if (a->nla_len < NLA_HDRLEN || a->nla_len > (size_t)(e - p))
    return NULL;
  return a;
}

const struct nlattr *nl_attr_first(const void *at, size_t len) {
  return attr_at(at, (const char *)at + len);
}

const struct nlattr *nl_attr_next(const struct nlattr *a, const void *end) {
  const char *next = (const char *)a + NLA_ALIGN(a->nla_len);
  return next >= (const char *)end ? NULL : attr_at(next, end);
}

const struct nlattr *nl_msg_attrs(const struct nlmsghdr *h, size_t hdrlen) {
  size_t skip = NLMSG_HDRLEN + NLMSG_ALIGN(hdrlen);
  if (h->nlmsg_len < skip)
    return NULL;
  return nl_attr_first((const char *)h + skip, h->nlmsg_len - skip);
}

bool nl_attr_u32(const struct nlattr *a, uint32_t *out) {
  if (nl_attr_len(a) != sizeof(*out))
    return false;
  memcpy(out, nl_attr_data(a), sizeof(*out));
  return true;
}

bool nl_attr_str(const struct nlattr *a, char *out, size_t size) {
  size_t len = strnlen(nl_attr_data(a), nl_attr_len(a));
  if (len == 0 || size == 0)
    return false;
  if (len >= size)
    len = size - 1;
  memcpy(out, nl_attr_data(a), len);
  out[len] = '\0';
  return true;
}

/* ---- a socket ------------------------------------------------------------- */

int nl_sock_bind(int fd, uint32_t *portid) {
  struct sockaddr_nl addr = {.nl_family = AF_NETLINK};
  if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
    return -1;
  socklen_t len = sizeof(addr);
  if (getsockname(fd, (struct sockaddr *)&addr, &len) < 0)
    return -1;
  if (len != sizeof(addr) || addr.nl_family != AF_NETLINK) {
    errno = EINVAL;
    return -1;
  }
  *portid = addr.nl_pid;
  return 0;
}

int nl_msg_send(int fd, const struct nl_msg *m) {
  if (m->overflow)
    return -EMSGSIZE;
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  ssize_t n;
  do
    n = sendto(fd, m->h, m->h->nlmsg_len, 0, (struct sockaddr *)&kernel,
               sizeof(kernel));
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return -errno;
  return (size_t)n == m->h->nlmsg_len ? 0 : -EIO;
}

long nl_recv(int fd, void *buf, size_t cap) {
  struct sockaddr_nl from;
  struct iovec iov = {.iov_base = buf, .iov_len = cap};
  struct msghdr msg = {.msg_name = &from, .msg_namelen = sizeof(from),
                       .msg_iov = &iov, .msg_iovlen = 1};
  ssize_t n;
  do
    n = recvmsg(fd, &msg, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return -errno;
  if (msg.msg_flags & MSG_TRUNC)
    return -ENOSPC;
  if (msg.msg_namelen != sizeof(from) || from.nl_pid != 0)
    return -EPROTO;
  return (long)n;
}

/* What one message of an answer says: 1 the answer is complete, 0 go on,
 * -errno the kernel's error or a malformed answer. */
static int run_one(const struct nlmsghdr *h, uint32_t seq, uint32_t portid,
                   nl_msg_cb cb, void *data) {
  /* Not ours (another request's late answer): skip it. */
  if (h->nlmsg_seq != seq || (h->nlmsg_pid != 0 && h->nlmsg_pid != portid))
    return 0;
  /* A dump that changed while it was read: its answer may be wrong. */
  if (h->nlmsg_flags & NLM_F_DUMP_INTR)
    return -EINTR;
  if (h->nlmsg_type == NLMSG_DONE) {
    int status = 0;
    if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(status)))
      memcpy(&status, NLMSG_DATA(h), sizeof(status));
    return status < 0 ? status : 1;
  }
  if (h->nlmsg_type == NLMSG_ERROR) {
    if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr)))
      return -EPROTO;
    const struct nlmsgerr *e = NLMSG_DATA(h);
    if (e->error > 0)
      return -EPROTO;
    return e->error == 0 ? 1 : e->error;
  }
  if (h->nlmsg_type >= NLMSG_MIN_TYPE && cb != NULL)
    cb(h, data);
  return 0;
}

int nl_run(const void *buf, size_t len, uint32_t seq, uint32_t portid,
           nl_msg_cb cb, void *data) {
  const char *p = buf;
  while (len > 0) {
    const struct nlmsghdr *h = (const struct nlmsghdr *)p;
    /* A partial message: the kernel never splits one. */
    if (len < NLMSG_HDRLEN || h->nlmsg_len < NLMSG_HDRLEN ||
        h->nlmsg_len > len)
      return -EPROTO;
    int r = run_one(h, seq, portid, cb, data);
    if (r != 0)
      return r;
    size_t step = NLMSG_ALIGN(h->nlmsg_len);
    if (step >= len)
      break;
    p += step;
    len -= step;
  }
  return 0;
}
