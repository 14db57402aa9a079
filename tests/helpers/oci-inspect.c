/* oci-inspect: print what libcell's image reader makes of an image, one
 * "key value" line each, for tests/bats/images.bats to compare with what
 * jq reads from the same archive.
 *
 * usage: oci-inspect layout DIR [REF]
 *        oci-inspect oci-archive|docker-archive FILE [REF]
 * Archives are unpacked beneath $TMPDIR (or /tmp). */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"
#include "base/util.h"
#include "storage/oci-archive.h"
#include "storage/oci-image.h"

static void print_strv(const char *key, char **v) {
  for (size_t i = 0; v && v[i]; i++)
    printf("%s %s\n", key, v[i]);
}

static void print_image(const struct oci_image *img) {
  printf("manifest %s\n", img->manifest_digest ? img->manifest_digest : "");
  printf("config %s\n", img->config_digest);
  for (size_t i = 0; i < img->n_layers; i++)
    printf("layer %s %s %llu\n", img->layers[i].digest,
           oci_compression_name(img->layers[i].compression),
           (unsigned long long)img->layers[i].size);
  const struct oci_image_config *c = &img->config;
  print_strv("diff_id", c->diff_ids);
  print_strv("entrypoint", c->entrypoint);
  print_strv("cmd", c->cmd);
  print_strv("env", c->env);
  print_strv("label", c->labels);
  printf("architecture %s\n", c->architecture ? c->architecture : "");
  printf("os %s\n", c->os ? c->os : "");
  printf("working_dir %s\n", c->working_dir ? c->working_dir : "");
  printf("user %s\n", c->user ? c->user : "");
}

static int read_image(const char *kind, const char *path, const char *ref,
                      struct oci_image **img, cell_error **err) {
  if (strcmp(kind, "layout") == 0) {
    cleanup_close int dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
      return cell_fail_errno(err, "open `%s`", path);
    return oci_image_read_layout(dir, ref, img, err);
  }
  bool docker = strcmp(kind, "docker-archive") == 0;
  if (docker || strcmp(kind, "oci-archive") == 0) {
    cleanup_close int file = open(path, O_RDONLY | O_CLOEXEC);
    if (file < 0)
      return cell_fail_errno(err, "open `%s`", path);
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    cleanup_close int work = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (work < 0)
      return cell_fail_errno(err, "open `%s`", tmp);
    return docker ? oci_image_read_docker_archive(file, work, ref, img, err)
                  : oci_image_read_oci_archive(file, work, ref, img, err);
  }
  return cell_fail(err, 0, "unknown source kind `%s`: layout, oci-archive or docker-archive",
                   kind);
}

int main(int argc, char **argv) {
  if (argc < 3 || argc > 4) {
    fprintf(stderr, "usage: oci-inspect layout|oci-archive|docker-archive PATH [REF]\n");
    return 2;
  }
  cleanup_oci_image struct oci_image *img = NULL;
  cleanup_error cell_error *err = NULL;
  if (read_image(argv[1], argv[2], argc == 4 ? argv[3] : NULL, &img, &err) < 0) {
    fprintf(stderr, "oci-inspect: %s\n", err->msg);
    return 1;
  }
  print_image(img);
  return 0;
}
