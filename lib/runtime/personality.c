#include "runtime/personality.h"

#include <errno.h>
#include <string.h>
#include <sys/personality.h>

int personality_apply(const struct spec *s, cell_error **err) {
  const struct spec_personality *p = s->linux_ ? s->linux_->personality : NULL;
  if (p == NULL)
    return 0;
  unsigned long persona;
  if (p->domain && strcmp(p->domain, "LINUX") == 0)
    persona = PER_LINUX;
  else if (p->domain && strcmp(p->domain, "LINUX32") == 0)
    persona = PER_LINUX32;
  else
    return cell_fail(err, 0, "linux.personality.domain: unknown domain `%s`",
                     p->domain ? p->domain : "");
  if (p->flags && p->flags[0])
    return cell_fail(err, 0, "linux.personality.flags[0]: unknown flag `%s`",
                     p->flags[0]);
  if (personality(persona) < 0)
    return cell_fail_errno(err, "linux.personality: set domain `%s`",
                           p->domain);
  return 0;
}
