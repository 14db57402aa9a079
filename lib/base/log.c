#include "base/log.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/json.h"
#include "base/util.h"

enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON };

static struct {
  char *program;
  int fd; /* log file, -1 when none */
  enum log_format format;
  bool debug;
} logger = {NULL, -1, LOG_FORMAT_TEXT, false};

/* logrus level names, which is what runc writes and containerd parses. */
static const char *level_name(enum log_level level) {
  switch (level) {
  case LOG_LEVEL_ERROR:
    return "error";
  case LOG_LEVEL_WARN:
    return "warning";
  case LOG_LEVEL_INFO:
    return "info";
  case LOG_LEVEL_DEBUG:
    return "debug";
  }
  return "unknown";
}

static int parse_format(const char *format, enum log_format *out,
                        cell_error **err) {
  if (format == NULL || strcmp(format, "text") == 0)
    *out = LOG_FORMAT_TEXT;
  else if (strcmp(format, "json") == 0)
    *out = LOG_FORMAT_JSON;
  else
    return cell_fail(err, 0, "--log-format: unknown format `%s` (text or json)",
                     format);
  return 0;
}

int log_init(const char *program, const char *file, const char *format,
             bool debug, cell_error **err) {
  enum log_format fmt = LOG_FORMAT_TEXT;
  if (parse_format(format, &fmt, err) < 0)
    return -1;
  int fd = -1;
  if (file != NULL && *file != '\0') {
    fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
      return cell_fail_errno(err, "open log file `%s`", file);
  }
  log_close();
  logger.program = xstrdup(program ? program : "cell");
  logger.fd = fd;
  logger.format = fmt;
  logger.debug = debug;
  return 0;
}

bool log_debug_enabled(void) { return logger.debug; }

int log_fd(void) { return logger.fd; }

void log_close(void) {
  if (logger.fd >= 0)
    close(logger.fd);
  logger.fd = -1;
  free(logger.program);
  logger.program = NULL;
  logger.format = LOG_FORMAT_TEXT;
  logger.debug = false;
}

/* logrus quotes a text value only when it holds a character outside this
 * set; runc's lines look the same from cell. */
static bool needs_quoting(const char *s) {
  for (const char *p = s; *p; p++)
    if (!isalnum((unsigned char)*p) && strchr("-._/@^+", *p) == NULL)
      return true;
  return false;
}

/* logrus's timestamps: RFC 3339 in seconds, UTC here. */
static char *log_time_now(void) {
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return xstrdup(buf);
}

/* Quote like Go's strconv.Quote (what logrus uses for text values), so a
 * message with quotes or newlines stays one parseable line. */
static void append_quoted(FILE *out, const char *s) {
  fputc('"', out);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    switch (*p) {
    case '"':
      fputs("\\\"", out);
      break;
    case '\\':
      fputs("\\\\", out);
      break;
    case '\n':
      fputs("\\n", out);
      break;
    case '\r':
      fputs("\\r", out);
      break;
    case '\t':
      fputs("\\t", out);
      break;
    default:
      if (*p < 0x20 || *p == 0x7f)
        fprintf(out, "\\x%02x", *p);
      else
        fputc(*p, out);
    }
  }
  fputc('"', out);
}

static char *format_text_line(enum log_level level, const char *msg) {
  char *line = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&line, &len);
  if (out == NULL)
    abort();
  cleanup_free char *now = log_time_now();
  fprintf(out, "time=\"%s\" level=%s msg=", now, level_name(level));
  if (needs_quoting(msg))
    append_quoted(out, msg);
  else
    fputs(msg, out);
  fputc('\n', out);
  if (fclose(out) != 0)
    abort();
  return line;
}

static char *format_json_line(enum log_level level, const char *msg) {
  cleanup_free char *now = log_time_now();
  struct json_gen *g = json_gen_new(false);
  json_gen_object_open(g);
  json_gen_kv_string(g, "level", level_name(level));
  json_gen_kv_string(g, "msg", msg);
  json_gen_kv_string(g, "time", now);
  json_gen_object_close(g);
  size_t len = 0;
  cleanup_free char *doc = json_gen_finish(g, &len);
  json_gen_free(g);
  /* Compact output has no newline; strip one anyway to stay one line. */
  while (len > 0 && doc[len - 1] == '\n')
    len--;
  return xasprintf("%.*s\n", (int)len, doc);
}

static void write_to_stderr(const char *msg) {
  cleanup_free char *line =
      xasprintf("%s: %s\n", logger.program ? logger.program : "cell", msg);
  (void)cell_write_all(STDERR_FILENO, line, strlen(line));
}

static void write_formatted(int fd, enum log_level level, const char *msg) {
  cleanup_free char *line = logger.format == LOG_FORMAT_JSON
                                ? format_json_line(level, msg)
                                : format_text_line(level, msg);
  /* One write per line: O_APPEND keeps lines of concurrent writers whole. */
  (void)cell_write_all(fd, line, strlen(line));
}

void log_msg(enum log_level level, const char *fmt, ...) {
  if (level == LOG_LEVEL_DEBUG && !logger.debug)
    return;
  int saved_errno = errno;
  cleanup_free char *msg = NULL;
  va_list ap;
  va_start(ap, fmt);
  if (vasprintf(&msg, fmt, ap) < 0)
    abort();
  va_end(ap);

  if (logger.fd >= 0) {
    write_formatted(logger.fd, level, msg);
    if (level == LOG_LEVEL_ERROR)
      write_to_stderr(msg);
  } else if (logger.debug || logger.format == LOG_FORMAT_JSON) {
    /* As runc: with --debug or --log-format json and no --log, stderr gets
     * the log's own lines, which a reader can then parse. */
    write_formatted(STDERR_FILENO, level, msg);
  } else if (level <= LOG_LEVEL_WARN) {
    write_to_stderr(msg);
  }
  errno = saved_errno;
}
