#define _XOPEN_SOURCE 700
#include "rmtree.h"

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

static int tkv__rmtree_cb(const char *path,
                          const struct stat *sb,
                          int flag,
                          struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void tkv_rmtree(const char *path)
{
    nftw(path, tkv__rmtree_cb, 16, FTW_DEPTH | FTW_PHYS);
}
