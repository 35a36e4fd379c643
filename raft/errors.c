/* The one place raft's error codes become tuplekv's (common/error.h). */
#include "glue.h"

int tkv__raft_code(int rv)
{
    switch (rv) {
        case 0:
            return 0;
        case RAFT_NOMEM:
            return TKV_ENOMEM;
        case RAFT_NOTLEADER:
            return TKV_ENOT_LEADER;
        case RAFT_LEADERSHIPLOST:
            return TKV_EUNKNOWN;
        case RAFT_SHUTDOWN:
        case RAFT_CANCELED:
            return TKV_ESHUTDOWN;
        case RAFT_BADID:
        case RAFT_DUPLICATEID:
        case RAFT_DUPLICATEADDRESS:
        case RAFT_BADROLE:
        case RAFT_INVALID:
        case RAFT_NAMETOOLONG:
            return TKV_EINVALID;
        case RAFT_NOTFOUND:
            return TKV_ENOT_FOUND;
        case RAFT_CANTCHANGE:
        case RAFT_BUSY:
        case RAFT_TOOMANY:
            return TKV_EBUSY;
        case RAFT_TOOBIG:
            return TKV_ETOO_LARGE;
        case RAFT_NOCONNECTION:
        case RAFT_NOSPACE:
            return TKV_EUNAVAILABLE;
        case RAFT_IOERR:
        case RAFT_UNAUTHORIZED:
            return TKV_EIO;
        case RAFT_CORRUPT:
        case RAFT_MALFORMED:
            return TKV_ECORRUPT;
        default:
            return TKV_EINTERNAL;
    }
}
