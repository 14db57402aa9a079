#ifndef CELL_VERSION_H
#define CELL_VERSION_H

#define CELL_VERSION "0.1.0"

#endif
