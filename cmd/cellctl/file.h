/* The file verb: push a file or a tree into an instance, pull one out. */
#ifndef CELLCTL_FILE_H
#define CELLCTL_FILE_H

#include "cellctl.h"

verb_fn cmd_file;

#endif
