/*
** atomicInt.h -- the private interface shared by the files of the atomic
** extension: its types, its constants and the functions one file offers
** the others.  The state machine these types hold is described once, in
** state.c, which is the only file that changes it.
**
** Names: everything here begins with "atomic" followed by a capital
** letter (atomicQueuePush), "Atomic" for types, or "ATM_" for macros.  C
** reserves "atomic_" followed by a lower-case letter, and "ATOMIC_"
** followed by a capital, for <stdatomic.h>.  Each non-static function is
** declared ATM_PRIVATE so that a single-file build can make it static.
*/
#ifndef ATOMICINT_H
#define ATOMICINT_H

#include "sqlite3ext.h"       /* With SQLITE_CORE, a static build */
SQLITE_EXTENSION_INIT3
#include <string.h>
#include <assert.h>

#define ATM_VERSION "0.1.0"

#ifndef ATM_PRIVATE
# define ATM_PRIVATE
#endif

typedef sqlite3_int64 i64;
typedef sqlite3_uint64 u64;
typedef unsigned int u32;
typedef unsigned char u8;

typedef struct AtomicBlock AtomicBlock;
typedef struct AtomicCallback AtomicCallback;
typedef struct AtomicConn AtomicConn;
typedef struct AtomicLevel AtomicLevel;
typedef struct AtomicManual AtomicManual;
typedef struct AtomicQueue AtomicQueue;
typedef struct AtomicSql AtomicSql;
typedef struct AtomicValue AtomicValue;

/*
** Statements the connection state keeps prepared (stmt.c).  The eponymous
** table atomic_close_guard finalizes them when sqlite3_close()
** disconnects it, which SQLite does before it checks for unfinalized
** statements (pending.c).
*/
#define ATM_STMT_BEGIN       0   /* BEGIN <transaction_mode> */
#define ATM_STMT_COMMIT      1   /* COMMIT */
#define ATM_STMT_ROLLBACK    2   /* ROLLBACK */
#define ATM_STMT_SAVEPOINT   3   /* SAVEPOINT <block savepoint name> */
#define ATM_STMT_RELEASE     4   /* RELEASE <block savepoint name> */
#define ATM_STMT_ROLLBACKTO  5   /* ROLLBACK TO <block savepoint name> */
#define ATM_STMT_JOIN        6   /* INSERT OR IGNORE INTO temp.atomic_txn */
#define ATM_STMT_SCHEMA      7   /* PRAGMA main.schema_version */
#define ATM_N_STMT           8

/* The states of a connection (state.c) */
#define ATM_IDLE        0   /* no transaction, no block */
#define ATM_MANUAL      1   /* the application's transaction, no block */
#define ATM_OWNED       2   /* blocks; the outermost began the transaction */
#define ATM_NESTED      3   /* blocks inside the application's transaction */
#define ATM_ORPHANED    4   /* blocks whose transaction ended elsewhere */
#define ATM_DOOMED      5   /* a transaction the extension must roll back */

/* How a transaction ended: AtomicConn.eEnd and eOrphan */
#define ATM_END_NONE      0   /* it did not: still open */
#define ATM_END_COMMIT    1   /* committed */
#define ATM_END_ROLLBACK  2   /* rolled back */
#define ATM_END_LOST      3   /* ended, and temp.atomic_txn did not hear it */

/* AtomicBlock.iLevel of a block that made no savepoint */
#define ATM_NO_SAVEPOINT  (-1)

/* Checks for atomicCheck() */
#define ATM_CHECK_WRITER  0x01   /* Called from a writing statement (E4) */
#define ATM_CHECK_FORBID  0x02   /* A block is open, orphans too (L1) */
#define ATM_CHECK_ORPHAN  0x04   /* Orphaned blocks remain (X5) */
#define ATM_CHECK_BROKEN  0x08   /* The transaction is broken (F3) */
#define ATM_CHECK_DOOMED  0x10   /* Roll back a doomed transaction first */

/* Bytes of user input an error message quotes (atomicClip) */
#define ATM_CLIP 100

/* Callbacks run nested at most this deep (C8) */
#define ATM_MAX_RUN_DEPTH  64

/* Values of AtomicConn.eMode (transaction_mode) */
#define ATM_MODE_DEFERRED   0
#define ATM_MODE_IMMEDIATE  1
#define ATM_MODE_EXCLUSIVE  2

/* SQL functions, in the registration table of atomic.c */
#define ATM_N_FUNC  (22+ATM_N_TEST_FUNC)
#ifdef ATOMIC_TEST
# define ATM_N_TEST_FUNC 7
#else
# define ATM_N_TEST_FUNC 0
#endif

/*
** One open atomic block.
*/
struct AtomicBlock {
  int iLevel;               /* Level of its savepoint, or ATM_NO_SAVEPOINT */
};

/*
** One open SQLite savepoint, as reported to temp.atomic_txn.  The owner is
** 0 for a savepoint the extension did not make (raw SQL, a statement
** savepoint) or no longer answers for, the 1-based depth of the block that
** made it, or minus the serial number of a manual savepoint.  The mark is
** the serial number of the last callback queued before it opened: a
** rollback to it discards the pending callbacks with larger numbers.
*/
struct AtomicLevel {
  i64 iOwner;               /* Who made it (see above) */
  i64 iMark;                /* AtomicConn.iSeq when it opened */
};

/*
** One open manual savepoint made by savepoint().  Its id is
** "<zPrefix>_x<iSerial>".  iDepth is the block it belongs to.
*/
struct AtomicManual {
  i64 iSerial;              /* Counter value in its id */
  int iLevel;               /* Its entry in AtomicConn.aLevel */
  int iDepth;               /* Block depth it belongs to */
};

/*
** A value kept for a callback's parameter.  Text and blob bytes live in
** the same allocation as the callback that owns them.
*/
struct AtomicValue {
  union {
    i64 i;                  /* SQLITE_INTEGER */
    double r;               /* SQLITE_FLOAT */
    const char *z;          /* SQLITE_TEXT, SQLITE_BLOB */
  } u;
  int n;                    /* Bytes of text or blob */
  int eType;                /* SQLITE_INTEGER, ... SQLITE_NULL */
};

/*
** The text of a callback's statement, shared by every callback queued with
** the same text, and possibly a prepared statement for it (sqltext.c).
*/
struct AtomicSql {
  AtomicConn *p;            /* Connection whose hash table holds it */
  char *zSql;               /* The text, nul-terminated */
  int nSql;                 /* Bytes in zSql */
  unsigned int iHash;       /* Hash of zSql */
  int nRef;                 /* Callbacks that refer to this text */
  int nParam;               /* sqlite3_bind_parameter_count() */
  int iSchema;              /* main's schema_version when last checked */
  u8 bData;                 /* pStmt was checked when main's data */
  unsigned int iData;       /*   version was iData (sqltext.c) */
  sqlite3_stmt *pStmt;      /* Cached prepared statement, or NULL */
  AtomicSql *pNext;         /* Next in the same hash bucket */
  AtomicSql *pLruPrev;      /* Neighbours in the list of cached statements */
  AtomicSql *pLruNext;
};

/*
** One queued callback: a statement and the values for its parameters.
*/
struct AtomicCallback {
  AtomicCallback *pNext;    /* Next in its queue */
  AtomicCallback *pPrev;    /* Previous in its queue */
  AtomicSql *pSql;          /* The statement (holds one reference) */
  i64 iSeq;                 /* Serial number, increasing in queue order */
  int iDepth;               /* Block depth when it was queued */
  int nArg;                 /* Entries in aArg[] */
  int nRef;                 /* The queue, and open atomic_pending cursors */
  u8 bRobust;               /* Queued by on_commit_robust() */
  AtomicValue aArg[1];      /* Parameter values (really nArg of them) */
};

/*
** A FIFO of callbacks, as a doubly linked list: appending, moving a whole
** queue to the end of another and detaching a queue are O(1) and cannot
** fail, and cutting it back to a serial number frees just what is cut.
*/
struct AtomicQueue {
  AtomicCallback *pFirst;   /* First to run */
  AtomicCallback *pLast;    /* Last queued */
};

/*
** The state of one connection.  The first group of fields is the state
** machine of state.c; only state.c writes them.
*/
struct AtomicConn {
  sqlite3 *db;              /* The connection */
  int nRef;                 /* Functions and modules that hold this object */

  /* The state machine (state.c) */
  AtomicBlock *aBlock;      /* Open blocks, outermost first */
  int nBlock;               /* Open blocks, orphans included */
  int nBlockAlloc;          /* Slots allocated in aBlock[] */
  u8 bOwner;                /* aBlock[0] began the transaction */
  u8 bRollback;             /* The rollback flag */
  u8 bBroken;               /* The flag was set by a failure (F3) */
  u8 eOrphan;               /* ATM_END_* of the end that orphaned them */
  u8 bDoomed;               /* The open transaction must be rolled back */
  u8 bJoined;               /* temp.atomic_txn is in this transaction */
  u8 bBlind;                /* ... but joined late: levels not yet known */
  u8 bExpectEnd;            /* The extension's own COMMIT/ROLLBACK runs */
  u8 eEnd;                  /* ATM_END_* of the last end heard */
  u32 nEnd;                 /* Transaction ends heard so far */
  u32 nRollbackTo;          /* ROLLBACK TOs heard so far */
  int nDoomChanges;         /* sqlite3_total_changes() when doomed */
  AtomicLevel *aLevel;      /* Open savepoints, outermost first */
  int nLevel;               /* Entries in aLevel[] */
  int nLevelAlloc;          /* Slots allocated in aLevel[] */
  AtomicManual *aManual;    /* Open manual savepoints, oldest first */
  int nManual;              /* Entries in aManual[] */
  int nManualAlloc;         /* Slots allocated in aManual[] */
  AtomicQueue pending;      /* Queued by the current transaction */
  AtomicQueue ready;        /* Committed, waiting to run (C9) */
  i64 iSeq;                 /* Serial number of the last callback queued */

  /* Bookkeeping outside the state machine */
  sqlite3_vtab *pJoinedTab; /* The temp.atomic_txn instance that joined
                            ** (NULL unless bJoined) */
  sqlite3_vtab *pCreatedTab;  /* The instance its last CREATE made */
  const char *zWhy;         /* Why the last statement "failed" although it
                            ** returned SQLITE_OK (it did nothing) */
  u8 bTxnAtStep;            /* A transaction was open when it began */
  i64 iNewOwner;            /* Owner of the next savepoint reported */
  i64 iSerial;              /* Last serial handed out by savepoint() */
  int nRunDepth;            /* Callbacks running now, nested */
  int iSchema;              /* main's schema_version, read in this */
  u8 bSchema;               /*   transaction if bSchema */
  u8 bGuard;                /* Instances of atomic_pending/_close_guard */
  int nRegistered;          /* Steps of the registration done (atomic.c) */
  int eMode;                /* ATM_MODE_* for BEGIN */
  char zPrefix[16];         /* Per-connection prefix of manual ids */
  char zSpName[24];         /* Name of every block savepoint */
  sqlite3_stmt *apStmt[ATM_N_STMT];  /* Kept statements, see ATM_STMT_* */

  /* Shared callback texts (sqltext.c) */
  AtomicSql **aSqlHash;     /* Hash table of shared statement texts */
  int nSqlHash;             /* Buckets in aSqlHash (a power of two) */
  int nSql;                 /* Entries in the hash table */
  AtomicSql *pLruFirst;     /* Entries holding a cached statement, */
  AtomicSql *pLruLast;      /*   most recently used first */
  int nLru;                 /* Entries in that list */

#ifdef ATOMIC_TEST
  /* Test builds: each SQL function is registered through a wrapper that
  ** checks the state after it (atomic.c) */
  struct AtomicWrap {
    AtomicConn *p;          /* This connection */
    void (*xFunc)(sqlite3_context*, int, sqlite3_value**);
    const char *zName;      /* The SQL function's name */
  } aWrap[ATM_N_FUNC];
  char *zFault;             /* Message of an injected statement fault */
  int iProbe;               /* Level the check's probe savepoint heard */
  u8 bTestDeaf;             /* Miss the next end (atomic_test_deaf) */
  u8 bProbing;              /* The check's probe runs (state.c) */
  u8 bProbeReleased;        /* ... and its RELEASE was heard */
#endif
};

/*
** The connection state of an SQL function.  Test builds register each
** function with a wrapper (atomic.c), whose user data points to it.
*/
#ifdef ATOMIC_TEST
# define atomicConn(ctx) (((struct AtomicWrap*)sqlite3_user_data(ctx))->p)
#else
# define atomicConn(ctx) ((AtomicConn*)sqlite3_user_data(ctx))
#endif

/*
** state.c -- the state machine
*/
ATM_PRIVATE int atomicState(AtomicConn *p);
ATM_PRIVATE int atomicBlockReserve(AtomicConn *p);
ATM_PRIVATE void atomicBlockPush(AtomicConn *p, int iLevel, int bOwner);
ATM_PRIVATE void atomicBlockPop(AtomicConn *p);
ATM_PRIVATE void atomicFlagSet(AtomicConn *p, int bFlag, int bBroken);
ATM_PRIVATE void atomicTxnJoined(AtomicConn *p, int bBlind);
ATM_PRIVATE void atomicTxnEnd(AtomicConn *p, int eHow);
ATM_PRIVATE int atomicLevelOpen(AtomicConn *p, int iLevel);
ATM_PRIVATE void atomicLevelRelease(AtomicConn *p, int iLevel);
ATM_PRIVATE void atomicLevelRollbackTo(AtomicConn *p, int iLevel);
ATM_PRIVATE void atomicDoom(AtomicConn *p);
ATM_PRIVATE int atomicManualReserve(AtomicConn *p);
ATM_PRIVATE void atomicManualAdd(AtomicConn *p, i64 iSerial, int iLevel);
ATM_PRIVATE void atomicManualPrune(AtomicConn *p);
ATM_PRIVATE void atomicPendingPush(AtomicConn *p, AtomicCallback *pCb);
ATM_PRIVATE AtomicCallback *atomicReadyTake(AtomicConn *p);
#ifdef ATOMIC_TEST
ATM_PRIVATE void atomicCheckState(AtomicConn *p, const char *zWhere);
ATM_PRIVATE char *atomicStateProblem(AtomicConn *p);
ATM_PRIVATE char *atomicTestBreak(AtomicConn *p, int eHow, int bKeep);
#endif

/* True if savepoint level iLevel exists and was made by iOwner */
static inline int atomicLevelAlive(AtomicConn *p, int iLevel, i64 iOwner){
  return iLevel>=0 && iLevel<p->nLevel && p->aLevel[iLevel].iOwner==iOwner;
}

/*
** stmt.c -- the statements the extension runs
*/
ATM_PRIVATE int atomicStep(AtomicConn *p, sqlite3_stmt *pStmt);
ATM_PRIVATE int atomicExecFull(AtomicConn *p, int iStmt);
ATM_PRIVATE int atomicExecSql(AtomicConn *p, const char *zSql);
ATM_PRIVATE int atomicSchemaVersion(AtomicConn *p, int *piVersion);
ATM_PRIVATE const char *atomicErrmsg(AtomicConn *p);
ATM_PRIVATE void atomicDidNothing(AtomicConn *p, const char *zWhy);
ATM_PRIVATE int atomicStepEnded(AtomicConn *p);
ATM_PRIVATE int atomicGuard(AtomicConn *p);
ATM_PRIVATE void atomicFinalizeAll(AtomicConn *p);
ATM_PRIVATE int atomicWriterActive(AtomicConn *p);
#ifdef ATOMIC_TEST
ATM_PRIVATE void atomicTestStepFunc(sqlite3_context*, int, sqlite3_value**);
#endif

/*
** Run kept statement iStmt to completion, preparing it first if it is not
** prepared yet.  Returns SQLITE_OK or the extended error code; the message
** is then atomicErrmsg(p).  In the release build a prepared statement is
** run inline, with no more bookkeeping than atomicStep()'s, because every
** block runs one or two; the test build always goes through
** atomicExecFull() (stmt.c), where faults are injected.
*/
static inline int atomicExec(AtomicConn *p, int iStmt){
#ifndef ATOMIC_TEST
  sqlite3_stmt *pStmt = p->apStmt[iStmt];
  if( pStmt ){
    int rc;
    p->zWhy = 0;
    p->bTxnAtStep = (u8)!sqlite3_get_autocommit(p->db);
    while( (rc = sqlite3_step(pStmt))==SQLITE_ROW ){}
    sqlite3_reset(pStmt);
    return rc==SQLITE_DONE ? SQLITE_OK : sqlite3_extended_errcode(p->db);
  }
#endif
  return atomicExecFull(p, iStmt);
}

/*
** atomicExec() for the two hot paths -- SAVEPOINT of an inner block,
** RELEASE when it is kept -- which a transaction is always open for.
*/
static inline int atomicExecHot(AtomicConn *p, int iStmt){
#ifndef ATOMIC_TEST
  sqlite3_stmt *pStmt = p->apStmt[iStmt];
  if( pStmt ){
    int rc;
    p->zWhy = 0;
    p->bTxnAtStep = 1;
    rc = sqlite3_step(pStmt);
    sqlite3_reset(pStmt);
    return rc==SQLITE_DONE ? SQLITE_OK : sqlite3_extended_errcode(p->db);
  }
#endif
  return atomicExecFull(p, iStmt);
}

/*
** Entry points call this first: open blocks (not yet orphans) or a doomed
** transaction need an open transaction.  If SQLite has none, it ended and
** temp.atomic_txn did not hear it; end it here.  temp.atomic_txn cannot be
** dropped while it follows a transaction, so this is a last line of
** defence.  Inline: every entry point runs it.
*/
static inline void atomicSync(AtomicConn *p){
  if( ((p->nBlock>0 && p->eOrphan==ATM_END_NONE) || p->bDoomed)
   && sqlite3_get_autocommit(p->db)
  ){
    atomicTxnEnd(p, ATM_END_LOST);
  }
}

/*
** txn.c -- temp.atomic_txn, which follows the transaction
*/
ATM_PRIVATE int atomicTxnRegister(sqlite3 *db, AtomicConn *p);
ATM_PRIVATE int atomicJoin(AtomicConn *p, char **pzErr);
ATM_PRIVATE int atomicSpOpen(AtomicConn *p, i64 iOwner, const char *zSql,
                             int *piLevel);
ATM_PRIVATE int atomicSpClose(AtomicConn *p, int iLevel, i64 iOwner,
                              int bRollback, int bRelease,
                              const char *zName);
ATM_PRIVATE int atomicEndTxn(AtomicConn *p, int bCommit, int *prc,
                             char **pzErr);

/*
** conn.c -- the connection state, checks, errors, arguments and memory
*/
ATM_PRIVATE AtomicConn *atomicConnNew(sqlite3 *db);
ATM_PRIVATE void atomicConnRef(AtomicConn *p);
ATM_PRIVATE void atomicConnUnref(void *p);
ATM_PRIVATE int atomicCheck(AtomicConn *p, sqlite3_context *ctx,
                            const char *zFunc, int mCheck);
ATM_PRIVATE int atomicRepair(AtomicConn *p, sqlite3_context *ctx,
                             const char *zFunc);
ATM_PRIVATE void atomicErrorWriter(sqlite3_context *ctx, AtomicConn *p,
                                   const char *zFunc);
ATM_PRIVATE const char *atomicOrphanText(AtomicConn *p);
ATM_PRIVATE const char *atomicCodeName(int rc);
ATM_PRIVATE const char *atomicClip(const char *z, char *zBuf);
ATM_PRIVATE const char *atomicOom(const char *z);
ATM_PRIVATE void atomicError(sqlite3_context *ctx, int rc,
                             const char *zFmt, ...);
ATM_PRIVATE void atomicErrorDb(sqlite3_context *ctx, AtomicConn *p, int rc,
                               const char *zFunc);
ATM_PRIVATE char *atomicStepError(AtomicConn *p);
ATM_PRIVATE int atomicArgBool(sqlite3_context *ctx, const char *zFunc,
                              const char *zArg, sqlite3_value *pVal,
                              int *pbOut);
ATM_PRIVATE void *atomicMalloc(i64 n);
ATM_PRIVATE void *atomicRealloc(void *p, i64 n);
ATM_PRIVATE char *atomicMprintf(const char *zFmt, ...);
ATM_PRIVATE int atomicGrowTo(void **pa, int *pnAlloc, int nNeed, int szElem);

/*
** Make sure the array *pa of elements of szElem bytes, with *pnAlloc slots,
** has room for nNeed elements.  Returns SQLITE_OK or SQLITE_NOMEM (the
** array is then unchanged).  Inline: blocks and savepoints check it.
*/
static inline int atomicGrow(void **pa, int *pnAlloc, int nNeed,
                             int szElem){
  if( nNeed<=*pnAlloc ) return SQLITE_OK;
  return atomicGrowTo(pa, pnAlloc, nNeed, szElem);
}
#ifdef ATOMIC_TEST
ATM_PRIVATE void atomicTestOomFunc(sqlite3_context*, int, sqlite3_value**);
#endif

ATM_PRIVATE extern const char atomicBrokenText[];
ATM_PRIVATE extern const char atomicForbiddenText[];
ATM_PRIVATE extern const char atomicDoomedText[];

/*
** block.c -- atomic blocks and the rollback flag
*/
ATM_PRIVATE void atomicEnterFunc(sqlite3_context*, int, sqlite3_value**);
ATM_PRIVATE void atomicExitFunc(sqlite3_context*, int, sqlite3_value**);
ATM_PRIVATE void atomicSetRollbackFunc(sqlite3_context*, int,
                                       sqlite3_value**);
ATM_PRIVATE void atomicGetRollbackFunc(sqlite3_context*, int,
                                       sqlite3_value**);
ATM_PRIVATE void atomicDepthFunc(sqlite3_context*, int, sqlite3_value**);

/*
** queue.c -- callbacks, their queues, and running them
*/
ATM_PRIVATE void atomicOnCommitFunc(sqlite3_context*, int, sqlite3_value**);
ATM_PRIVATE void atomicOnCommitRobustFunc(sqlite3_context*, int,
                                          sqlite3_value**);
ATM_PRIVATE void atomicQueueAppend(AtomicQueue *pQ, AtomicCallback *pCb);
ATM_PRIVATE void atomicQueueCut(AtomicQueue *pQ, i64 iMark);
ATM_PRIVATE void atomicQueueMove(AtomicQueue *pDest, AtomicQueue *pSrc);
ATM_PRIVATE void atomicCallbackUnref(AtomicCallback *pCb);
ATM_PRIVATE int atomicRunReady(AtomicConn *p, char **pzErr);

/*
** sqltext.c -- shared callback statement texts
*/
ATM_PRIVATE void atomicSqlRan(AtomicSql *pSql);
ATM_PRIVATE int atomicSqlGet(AtomicConn *p, const char *zSql, int nSql,
                             AtomicSql **ppOut, char **pzErr);
ATM_PRIVATE int atomicSqlPrepare(AtomicConn *p, const char *zSql, int nSql,
                                 sqlite3_stmt **ppStmt, char **pzErr);
ATM_PRIVATE void atomicSqlKeep(AtomicSql *pSql, sqlite3_stmt *pStmt);
ATM_PRIVATE void atomicSqlUnref(AtomicSql *pSql);
ATM_PRIVATE void atomicSqlFinalize(AtomicConn *p);
ATM_PRIVATE void atomicSqlClear(AtomicConn *p);

/*
** json.c -- a callback's arguments as JSON
*/
ATM_PRIVATE char *atomicArgsJson(AtomicCallback *pCb);

/*
** pending.c -- the atomic_pending table
*/
ATM_PRIVATE int atomicPendingRegister(sqlite3 *db, AtomicConn *p,
                                      int bGuard);

/*
** savepoint.c -- manual savepoints
*/
ATM_PRIVATE void atomicSavepointFunc(sqlite3_context*, int, sqlite3_value**);
ATM_PRIVATE void atomicSavepointCommitFunc(sqlite3_context*, int,
                                           sqlite3_value**);
ATM_PRIVATE void atomicSavepointRollbackFunc(sqlite3_context*, int,
                                             sqlite3_value**);
ATM_PRIVATE void atomicCleanSavepointsFunc(sqlite3_context*, int,
                                           sqlite3_value**);

/*
** lowlevel.c -- autocommit, commit and rollback by hand
*/
ATM_PRIVATE void atomicGetAutocommitFunc(sqlite3_context*, int,
                                         sqlite3_value**);
ATM_PRIVATE void atomicSetAutocommitFunc(sqlite3_context*, int,
                                         sqlite3_value**);
ATM_PRIVATE void atomicCommitFunc(sqlite3_context*, int, sqlite3_value**);
ATM_PRIVATE void atomicRollbackFunc(sqlite3_context*, int, sqlite3_value**);

#endif /* ATOMICINT_H */
