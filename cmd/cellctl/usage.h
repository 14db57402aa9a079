/* What cellctl prints of an instance's "usage" (celld's show and list
 * answers): sizes and shares as people read them, for show, list and
 * top. */
#ifndef CELLCTL_USAGE_H
#define CELLCTL_USAGE_H

#include "base/json.h"

/* Bytes as 512B, 12.3K, 45.6M, 7.8G; "-" below 0 (unknown). */
char *usage_size_text(long long bytes);
/* Its memory now, its CPU share over the last interval (45.2), its
 * pids; "-" for what is not known (a stopped instance). */
char *usage_memory_text(const struct json_value *inst);
char *usage_cpu_text(const struct json_value *inst);
char *usage_pids_text(const struct json_value *inst);
/* Bytes received and sent on all its NICs together, as it sees them. */
char *usage_rx_text(const struct json_value *inst);
char *usage_tx_text(const struct json_value *inst);
char *usage_disk_text(const struct json_value *inst);
/* show's lines: memory, cpu, pids, each NIC. */
void print_usage_lines(const struct json_value *inst);

#endif
