/* Netlink messages built and read (lib/net/nlmsg.c): what the kernel gets
 * and how its answers, well-formed or not, are read. */
#include <errno.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <stdlib.h>

#include "net/nlmsg.h"
#include "unit.h"

static char buf[NL_MSG_MAX] __attribute__((aligned(NLMSG_ALIGNTO)));

TEST(builds_nested_attributes_with_their_lengths) {
  struct nl_msg m;
  struct ifinfomsg *ifi =
      nl_msg_start(&m, &buf, RTM_NEWLINK, NLM_F_REQUEST, sizeof(*ifi));
  ifi->ifi_index = 7;
  nl_msg_put_strz(&m, IFLA_IFNAME, "veth0");
  struct nlattr *info = nl_msg_nest_start(&m, IFLA_LINKINFO);
  nl_msg_put_strz(&m, IFLA_INFO_KIND, "veth");
  nl_msg_nest_end(&m, info);
  nl_msg_put_u32(&m, IFLA_MTU, 1400);
  CHECK(!m.overflow);
  CHECK(m.h->nlmsg_type == RTM_NEWLINK);
  CHECK(m.h->nlmsg_len % NLMSG_ALIGNTO == 0);
  /* ifname "veth0\0" (4 + 6, padded to 12), the nest (4 + "veth\0" as
   * 4 + 5 padded to 12 = 16), mtu 8. */
  CHECK(m.h->nlmsg_len == NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(*ifi)) + 12 + 16 + 8);
  CHECK(info->nla_len == 16);
  CHECK(info->nla_type == (NLA_F_NESTED | IFLA_LINKINFO));

  const struct nlattr *a;
  int seen = 0;
  nl_attr_for_each(a, m.h, sizeof(*ifi)) {
    char s[IFNAMSIZ];
    uint32_t v;
    if (nl_attr_type(a) == IFLA_IFNAME) {
      CHECK(nl_attr_str(a, s, sizeof(s)));
      CHECK_STR(s, "veth0");
      seen |= 1;
    } else if (nl_attr_type(a) == IFLA_LINKINFO) {
      const struct nlattr *n;
      nl_attr_for_each_nested(n, a) {
        CHECK(nl_attr_type(n) == IFLA_INFO_KIND);
        CHECK(nl_attr_str(n, s, sizeof(s)));
        CHECK_STR(s, "veth");
        seen |= 2;
      }
    } else if (nl_attr_type(a) == IFLA_MTU) {
      CHECK(nl_attr_u32(a, &v));
      CHECK(v == 1400);
      seen |= 4;
    }
  }
  CHECK(seen == 7);
}

TEST(an_attribute_too_big_overflows_and_is_not_sent) {
  struct nl_msg m;
  nl_msg_start(&m, &buf, RTM_NEWLINK, NLM_F_REQUEST, sizeof(struct ifinfomsg));
  static char big[NL_MSG_MAX];
  uint32_t len = m.h->nlmsg_len;
  nl_msg_put(&m, IFLA_IFALIAS, sizeof(big), big);
  CHECK(m.overflow);
  CHECK(m.h->nlmsg_len == len); /* nothing written */
  CHECK(nl_msg_send(-1, &m) == -EMSGSIZE);
}

/* A datagram of the kernel: messages appended to a buffer. */
struct datagram {
  char b[1024] __attribute__((aligned(NLMSG_ALIGNTO)));
  size_t len;
};

static struct nlmsghdr *add(struct datagram *d, uint16_t type, uint32_t seq,
                            const void *payload, size_t plen) {
  struct nlmsghdr *h = (struct nlmsghdr *)(d->b + d->len);
  memset(h, 0, NLMSG_SPACE(plen));
  h->nlmsg_len = (uint32_t)NLMSG_LENGTH(plen);
  h->nlmsg_type = type;
  h->nlmsg_seq = seq;
  memcpy(NLMSG_DATA(h), payload, plen);
  d->len += NLMSG_SPACE(plen);
  return h;
}

static void count_cb(const struct nlmsghdr *h, void *data) {
  (void)h;
  ++*(int *)data;
}

TEST(answers_end_at_the_ack_or_the_kernels_error) {
  struct datagram d = {.len = 0};
  struct ifinfomsg ifi = {0};
  struct nlmsgerr ack = {.error = 0};
  add(&d, RTM_NEWLINK, 5, &ifi, sizeof(ifi));
  add(&d, NLMSG_ERROR, 5, &ack, sizeof(ack));
  int n = 0;
  CHECK(nl_run(d.b, d.len, 5, 1, count_cb, &n) == 1);
  CHECK(n == 1);

  struct datagram e = {.len = 0};
  struct nlmsgerr no = {.error = -ENODEV};
  add(&e, NLMSG_ERROR, 6, &no, sizeof(no));
  CHECK(nl_run(e.b, e.len, 6, 1, NULL, NULL) == -ENODEV);
}

TEST(a_dump_goes_on_until_done) {
  struct datagram d = {.len = 0};
  struct ifinfomsg ifi = {0};
  add(&d, RTM_NEWLINK, 9, &ifi, sizeof(ifi));
  add(&d, RTM_NEWLINK, 9, &ifi, sizeof(ifi));
  int n = 0;
  CHECK(nl_run(d.b, d.len, 9, 1, count_cb, &n) == 0); /* more to come */
  CHECK(n == 2);
  struct datagram done = {.len = 0};
  int status = 0;
  add(&done, NLMSG_DONE, 9, &status, sizeof(status));
  CHECK(nl_run(done.b, done.len, 9, 1, count_cb, &n) == 1);
  status = -EBUSY; /* a dump that failed says so in its DONE */
  struct datagram failed = {.len = 0};
  add(&failed, NLMSG_DONE, 9, &status, sizeof(status));
  CHECK(nl_run(failed.b, failed.len, 9, 1, NULL, NULL) == -EBUSY);
  /* A dump that changed while read is no answer. */
  struct datagram intr = {.len = 0};
  add(&intr, RTM_NEWLINK, 9, &ifi, sizeof(ifi))->nlmsg_flags = NLM_F_DUMP_INTR;
  CHECK(nl_run(intr.b, intr.len, 9, 1, NULL, NULL) == -EINTR);
}

TEST(another_requests_answer_is_skipped) {
  struct datagram d = {.len = 0};
  struct nlmsgerr no = {.error = -EPERM};
  add(&d, NLMSG_ERROR, 3, &no, sizeof(no)); /* an older request's */
  struct nlmsgerr ack = {.error = 0};
  add(&d, NLMSG_ERROR, 4, &ack, sizeof(ack));
  CHECK(nl_run(d.b, d.len, 4, 1, NULL, NULL) == 1);
}

TEST(malformed_answers_are_refused_not_overrun) {
  struct datagram d = {.len = 0};
  struct ifinfomsg ifi = {0};
  struct nlmsghdr *h = add(&d, RTM_NEWLINK, 2, &ifi, sizeof(ifi));
  h->nlmsg_len = 4096; /* longer than the datagram */
  int n = 0;
  CHECK(nl_run(d.b, d.len, 2, 1, count_cb, &n) == -EPROTO);
  CHECK(n == 0);
  /* An error message too short for its nlmsgerr. */
  struct datagram e = {.len = 0};
  int short_err = 0;
  add(&e, NLMSG_ERROR, 2, &short_err, sizeof(short_err));
  CHECK(nl_run(e.b, e.len, 2, 1, NULL, NULL) == -EPROTO);
}

TEST(attribute_lengths_that_lie_end_the_walk) {
  struct nl_msg m;
  nl_msg_start(&m, &buf, RTM_NEWLINK, 0, sizeof(struct ifinfomsg));
  nl_msg_put_u32(&m, IFLA_MTU, 1500);
  struct nlattr *second =
      (struct nlattr *)((char *)m.h + m.h->nlmsg_len);
  nl_msg_put_u32(&m, IFLA_MASTER, 3);
  second->nla_len = 200; /* past the end of the message */
  const struct nlattr *a;
  int n = 0;
  nl_attr_for_each(a, m.h, sizeof(struct ifinfomsg)) n++;
  CHECK(n == 1);
  second->nla_len = 2; /* shorter than its own header */
  n = 0;
  nl_attr_for_each(a, m.h, sizeof(struct ifinfomsg)) n++;
  CHECK(n == 1);
  /* A u32 of the wrong size, an empty string: not read. */
  uint32_t v = 42;
  char s[8] = "x";
  second->nla_len = NLA_HDRLEN + 2;
  CHECK(!nl_attr_u32(second, &v) && v == 42);
  second->nla_len = NLA_HDRLEN;
  CHECK(!nl_attr_str(second, s, sizeof(s)));
  /* A string with no NUL in its payload is cut to its length. */
  struct nl_msg t;
  nl_msg_start(&t, &buf, RTM_NEWLINK, 0, 0);
  nl_msg_put(&t, IFLA_IFNAME, 3, "abc");
  const struct nlattr *name = nl_msg_attrs(t.h, 0);
  CHECK(name != NULL && nl_attr_str(name, s, sizeof(s)));
  CHECK_STR(s, "abc");
  CHECK(nl_attr_str(name, s, 3)); /* and to the buffer */
  CHECK_STR(s, "ab");
}

int main(void) {
  RUN(builds_nested_attributes_with_their_lengths);
  RUN(an_attribute_too_big_overflows_and_is_not_sent);
  RUN(answers_end_at_the_ack_or_the_kernels_error);
  RUN(a_dump_goes_on_until_done);
  RUN(another_requests_answer_is_skipped);
  RUN(malformed_answers_are_refused_not_overrun);
  RUN(attribute_lengths_that_lie_end_the_walk);
  UNIT_DONE();
}
