#ifndef TIPLINE_CLIBPQ_SHIM_H
#define TIPLINE_CLIBPQ_SHIM_H
// Debian's libpq-dev puts libpq-fe.h under /usr/include/postgresql; its own
// quoted include of postgres_ext.h resolves next to it.
#include <postgresql/libpq-fe.h>
#endif
