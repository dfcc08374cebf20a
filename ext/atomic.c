/*
** atomic.c -- Django's transaction model for every SQLite connection: the
** entry point of the atomic extension and its registration table.
**
**   .load ./atomic                       -- sqlite3 CLI
**   SELECT load_extension('./atomic');   -- SQL, where allowed
**
** Entry point sqlite3_atomic_init.  Needs SQLite 3.35.0 or later.
**
** SQL FUNCTIONS (see the README for the full contract of each)
**
**   atomic_enter([SAVEPOINT [, DURABLE]])  open a block; returns the depth
**   atomic_exit([OK])                      close it; 1 kept, 0 rolled back
**   set_rollback(FLAG), get_rollback()     the rollback flag
**   atomic_depth()                         open blocks
**   on_commit(SQL [, ARG ...])             run SQL after the outermost
**   on_commit_robust(SQL [, ARG ...])        commit; 1 queued, 0 ran now
**   savepoint(), savepoint_commit(SID),    manual savepoints
**   savepoint_rollback(SID), clean_savepoints()
**   get_autocommit(), set_autocommit(FLAG) autocommit mode
**   atomic_commit(), atomic_rollback()     COMMIT / ROLLBACK by hand
**   atomic_config(KEY [, VALUE])           settings; returns the old value
**   atomic_version()                       '0.1.0'
**   atomic_state()                         internal (see below)
**
** Misuse is an error whose message names the function and says what to
** do; flags and counts accept integers and texts or reals holding one;
** NULL is an error except where a function says otherwise.
**
** TABLES
**
**   atomic_pending      one row per queued callback (pending.c)
**   atomic_close_guard  the same module again, internal (pending.c)
**   temp.atomic_txn     follows the transaction for the extension (txn.c)
**
** Example:
**
**   SELECT atomic_enter();
**   INSERT INTO orders VALUES(1);
**   SELECT on_commit('INSERT INTO mail VALUES(?1)', 1);
**   SELECT atomic_exit();        -- COMMIT, then the INSERT INTO mail runs
**
** HOW IT WORKS
**
** All state lives in one AtomicConn per connection (atomicInt.h), shared
** by every function and module.  Loading the extension again on the same
** connection must keep that state (N2).  SQLite has no lookup for a
** function's user data before 3.44, so the first load registers
** atomic_state(), which returns the state through SQLite's pointer-passing
** interface; a later load calls it, finds the state, and registers
** nothing -- unless the load that made it failed half way, and then it
** finishes that registration with the same state.  From SQL the pointer
** is just a NULL.  The library keeps itself loaded (atomicPin), because a
** failed load leaves functions registered that point into it.
*/
#if !defined(SQLITE_CORE) && !defined(_WIN32)
# ifndef _GNU_SOURCE
#  define _GNU_SOURCE         /* dladdr(), RTLD_NOLOAD, RTLD_NODELETE */
# endif
# include <dlfcn.h>
#endif
#include "atomicInt.h"
SQLITE_EXTENSION_INIT1

/* Pointer type for atomic_state(): a different build is not compatible
** (the test build's state is larger) */
#ifdef ATOMIC_TEST
# define ATM_STATE_TYPE "atomic-state-" ATM_VERSION "-test"
#else
# define ATM_STATE_TYPE "atomic-state-" ATM_VERSION
#endif

/*
** atomic_version(): the version text.
*/
static void atomicVersionFunc(sqlite3_context *ctx, int argc,
                              sqlite3_value **argv){
  (void)argc; (void)argv;
  sqlite3_result_text(ctx, ATM_VERSION, -1, SQLITE_STATIC);
}

/*
** atomic_state(): the connection state, as a pointer (NULL to SQL).
*/
static void atomicStateFunc(sqlite3_context *ctx, int argc,
                            sqlite3_value **argv){
  (void)argc; (void)argv;
  sqlite3_result_pointer(ctx, atomicConn(ctx), ATM_STATE_TYPE, 0);
}

/*
** atomic_config(key [, value]): returns the value in force before the
** call; with a value, sets it.  Keys:
**
**   transaction_mode   DEFERRED (default), IMMEDIATE or EXCLUSIVE, any
**                      case: the BEGIN of an outermost block and of
**                      set_autocommit(0)
*/
static void atomicConfigFunc(sqlite3_context *ctx, int argc,
                             sqlite3_value **argv){
  static const char *const azMode[] = { "DEFERRED", "IMMEDIATE", "EXCLUSIVE" };
  AtomicConn *p = atomicConn(ctx);
  const char *zKey = (const char*)sqlite3_value_text(argv[0]);
  char zClip[ATM_CLIP+4];
  int i;
  if( zKey==0 || sqlite3_stricmp(zKey, "transaction_mode")!=0 ){
    atomicError(ctx, SQLITE_ERROR, "atomic_config(): unknown key %s%q%s; "
        "the keys are: transaction_mode", zKey ? "'" : "",
        atomicClip(zKey, zClip), zKey ? "'" : "");
    return;
  }
  if( argc>1 ){
    const char *zVal = (const char*)sqlite3_value_text(argv[1]);
    for(i=0; i<3; i++){
      if( zVal && sqlite3_stricmp(zVal, azMode[i])==0 ) break;
    }
    if( i==3 ){
      atomicError(ctx, SQLITE_ERROR, "atomic_config(): transaction_mode "
          "must be DEFERRED, IMMEDIATE or EXCLUSIVE, not %s%q%s",
          zVal ? "'" : "", atomicClip(zVal, zClip), zVal ? "'" : "");
      return;
    }
    sqlite3_result_text(ctx, azMode[p->eMode], -1, SQLITE_STATIC);
    if( i!=p->eMode ){
      p->eMode = i;
      sqlite3_finalize(p->apStmt[ATM_STMT_BEGIN]);
      p->apStmt[ATM_STMT_BEGIN] = 0;
    }
    return;
  }
  sqlite3_result_text(ctx, azMode[p->eMode], -1, SQLITE_STATIC);
}

#ifdef ATOMIC_TEST
/*
** atomic_test_check([N [, KEEP]]): NULL if the state machine's invariant
** holds, else what is wrong (state.c).  With N, the state is first broken
** in way N (atomicTestBreak), to show that the check sees it, and mended
** after, unless KEEP.  Test builds only.
*/
static void atomicTestCheckFunc(sqlite3_context *ctx, int argc,
                                sqlite3_value **argv){
  AtomicConn *p = atomicConn(ctx);
  char *z;
  if( argc==0 ){
    z = atomicStateProblem(p);
  }else{
    z = atomicTestBreak(p, sqlite3_value_int(argv[0]),
                        argc>1 && sqlite3_value_int(argv[1]));
  }
  if( z ) sqlite3_result_text(ctx, z, -1, sqlite3_free);
}

/*
** atomic_test_deaf(): temp.atomic_txn does not hear the next end of a
** transaction, as if SQLite had failed to tell it.  Test builds only.
*/
static void atomicTestDeafFunc(sqlite3_context *ctx, int argc,
                               sqlite3_value **argv){
  (void)argc; (void)argv;
  atomicConn(ctx)->bTestDeaf = 1;
}
#endif

/*
** Flags, chosen on purpose:
**
** DIRECT   Rationale for DIRECTONLY: these functions begin, end or roll
**          back transactions and savepoints.  A view, trigger, CHECK or
**          default in a database file an attacker wrote must not be able
**          to call them.  They only work from a top-level statement that
**          does not write anyway (E4).
** QUEUE    on_commit*() and set_rollback() are meant for triggers too, so
**          not DIRECTONLY; they change what happens at commit, so not
**          INNOCUOUS either: with PRAGMA trusted_schema=OFF a schema object
**          of an untrusted file cannot use them (TEMP triggers can).
** LOOK     Pure introspection: INNOCUOUS.
*/
#define DIRECT  (SQLITE_UTF8|SQLITE_DIRECTONLY)
#define QUEUE   (SQLITE_UTF8)
#define LOOK    (SQLITE_UTF8|SQLITE_INNOCUOUS)

static const struct AtomicFuncDef {
  const char *zName;        /* SQL name */
  signed char nArg;         /* Number of arguments, -1 for any */
  int eFlags;               /* Text encoding and flags */
  void (*xFunc)(sqlite3_context*, int, sqlite3_value**);
} aAtomicFunc[] = {
  /* First: a later load finds the state through it, also after a load
  ** that failed half way, and then finishes the registration */
  { "atomic_state",        0, DIRECT, atomicStateFunc },
  { "atomic_enter",        0, DIRECT, atomicEnterFunc },
  { "atomic_enter",        1, DIRECT, atomicEnterFunc },
  { "atomic_enter",        2, DIRECT, atomicEnterFunc },
  { "atomic_exit",         0, DIRECT, atomicExitFunc },
  { "atomic_exit",         1, DIRECT, atomicExitFunc },
  { "set_rollback",        1, QUEUE,  atomicSetRollbackFunc },
  { "get_rollback",        0, LOOK,   atomicGetRollbackFunc },
  { "atomic_depth",        0, LOOK,   atomicDepthFunc },
  { "on_commit",          -1, QUEUE,  atomicOnCommitFunc },
  { "on_commit_robust",   -1, QUEUE,  atomicOnCommitRobustFunc },
  { "savepoint",           0, DIRECT, atomicSavepointFunc },
  { "savepoint_commit",    1, DIRECT, atomicSavepointCommitFunc },
  { "savepoint_rollback",  1, DIRECT, atomicSavepointRollbackFunc },
  { "clean_savepoints",    0, DIRECT, atomicCleanSavepointsFunc },
  { "get_autocommit",      0, LOOK,   atomicGetAutocommitFunc },
  { "set_autocommit",      1, DIRECT, atomicSetAutocommitFunc },
  { "atomic_commit",       0, DIRECT, atomicCommitFunc },
  { "atomic_rollback",     0, DIRECT, atomicRollbackFunc },
  { "atomic_config",       1, DIRECT, atomicConfigFunc },
  { "atomic_config",       2, DIRECT, atomicConfigFunc },
  { "atomic_version",      0, LOOK|SQLITE_DETERMINISTIC, atomicVersionFunc },
#ifdef ATOMIC_TEST
  { "atomic_test_oom",     1, DIRECT, atomicTestOomFunc },
  { "atomic_test_step",    2, DIRECT, atomicTestStepFunc },
  { "atomic_test_step",    3, DIRECT, atomicTestStepFunc },
  { "atomic_test_check",   0, DIRECT, atomicTestCheckFunc },
  { "atomic_test_check",   1, DIRECT, atomicTestCheckFunc },
  { "atomic_test_check",   2, DIRECT, atomicTestCheckFunc },
  { "atomic_test_deaf",    0, DIRECT, atomicTestDeafFunc },
#endif
};

/* ATM_N_FUNC (atomicInt.h) sizes AtomicConn.aWrap: it must be right */
typedef char atomicFuncCountIsRight[
    sizeof(aAtomicFunc)/sizeof(aAtomicFunc[0])==ATM_N_FUNC ? 1 : -1];

#ifdef ATOMIC_TEST
/*
** Test builds: every SQL function runs through this wrapper, which checks
** the state machine's invariant after it (state.c).
*/
static void atomicCheckedFunc(sqlite3_context *ctx, int argc,
                              sqlite3_value **argv){
  struct AtomicWrap *pWrap = (struct AtomicWrap*)sqlite3_user_data(ctx);
  pWrap->xFunc(ctx, argc, argv);
  atomicCheckState(pWrap->p, pWrap->zName);
}

/* The xDestroy of a wrapped function: its reference to the state */
static void atomicWrapUnref(void *pArg){
  atomicConnUnref(((struct AtomicWrap*)pArg)->p);
}
#endif

/*
** Register SQL function aAtomicFunc[i] on db with state p, which it holds
** a reference to (released by its xDestroy, even if this fails).  Returns
** SQLITE_OK or an error code.
*/
static int atomicRegisterFunc(sqlite3 *db, AtomicConn *p, int i){
  const struct AtomicFuncDef *pDef = &aAtomicFunc[i];
  atomicConnRef(p);
#ifdef ATOMIC_TEST
  p->aWrap[i].p = p;
  p->aWrap[i].xFunc = pDef->xFunc;
  p->aWrap[i].zName = pDef->zName;
  return sqlite3_create_function_v2(db, pDef->zName, pDef->nArg,
      pDef->eFlags, &p->aWrap[i], atomicCheckedFunc, 0, 0, atomicWrapUnref);
#else
  return sqlite3_create_function_v2(db, pDef->zName, pDef->nArg,
      pDef->eFlags, p, pDef->xFunc, 0, 0, atomicConnUnref);
#endif
}

/*
** Step iStep of the registration of everything on db: the SQL functions,
** then the modules.  Returns SQLITE_OK or an error code.
*/
#define ATM_N_STEP (ATM_N_FUNC+3)
static int atomicRegisterStep(sqlite3 *db, AtomicConn *p, int iStep){
  if( iStep<ATM_N_FUNC ) return atomicRegisterFunc(db, p, iStep);
  if( iStep<ATM_N_FUNC+2 ){
    return atomicPendingRegister(db, p, iStep==ATM_N_FUNC+1);
  }
  return atomicTxnRegister(db, p);
}

/*
** Look for the state of an earlier load on db.  Returns SQLITE_OK with
** *pp set to it or to NULL if there is none, or an error with *pzErrMsg
** set: an incompatible build is loaded, or the lookup itself failed (an
** interrupt), in which case registering again would replace the state
** of the earlier load.
*/
static int atomicFindState(sqlite3 *db, AtomicConn **pp, char **pzErrMsg){
  sqlite3_stmt *pStmt = 0;
  int rc;
  *pp = 0;
  /* Ask pragma_function_list first: preparing a call of a function that
  ** does not exist would leave an error on the connection, and every
  ** later sqlite3_reset() pays a little for that */
  rc = sqlite3_prepare_v2(db, "SELECT 1 FROM pragma_function_list "
                              "WHERE name='atomic_state'", -1, &pStmt, 0);
  if( rc==SQLITE_OK ){
    int rcStep = sqlite3_step(pStmt);
    rc = sqlite3_finalize(pStmt);
    pStmt = 0;
    if( rcStep==SQLITE_DONE && rc==SQLITE_OK ) return SQLITE_OK;
    if( rcStep==SQLITE_ROW ){
      rc = sqlite3_prepare_v2(db, "SELECT atomic_state()", -1, &pStmt, 0);
      if( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
        *pp = (AtomicConn*)sqlite3_value_pointer(
                  sqlite3_column_value(pStmt, 0), ATM_STATE_TYPE);
      }
      if( rc==SQLITE_OK ) rc = sqlite3_finalize(pStmt);
    }
  }
  if( rc!=SQLITE_OK ){
    *pzErrMsg = sqlite3_mprintf("atomic: cannot tell whether the extension "
        "is loaded on this connection already: %s", sqlite3_errmsg(db));
  }else if( *pp==0 ){
    *pzErrMsg = sqlite3_mprintf("atomic: another version of the extension "
        "is already loaded on this connection; it stays in use");
    rc = SQLITE_ERROR;
  }
  return rc;
}

/*
** Keep this library loaded for the life of the process.  If a load fails
** after some functions were registered (an allocation fails, or an
** application's function of the same name is in use), SQLite unloads the
** library but the functions stay registered on the connection; calling
** them, or destroying them, would then jump into unmapped memory.
** RTLD_NODELETE on the copy that is already loaded prevents that.
*/
static void atomicPin(void){
#if !defined(SQLITE_CORE) && !defined(_WIN32)
  Dl_info info;
  if( dladdr((void*)atomicPin, &info) && info.dli_fname ){
    dlopen(info.dli_fname, RTLD_NOW|RTLD_NOLOAD|RTLD_NODELETE);
  }
#endif
}

/*
** Load the extension on db: find the state of an earlier load, or make
** one and register everything.  The entry points below call this, not one
** another: the dynamic linker may resolve an exported name to another
** build loaded earlier.
*/
static int atomicInit(sqlite3 *db, char **pzErrMsg,
                      const sqlite3_api_routines *pApi){
  AtomicConn *p = 0;
  int rc;
  SQLITE_EXTENSION_INIT2(pApi);

  if( sqlite3_libversion_number()<3035000 ){
    *pzErrMsg = sqlite3_mprintf("atomic needs SQLite 3.35.0 or later; this "
                                "is SQLite %s", sqlite3_libversion());
    return SQLITE_ERROR;
  }
  atomicPin();
  rc = atomicFindState(db, &p, pzErrMsg);
  if( rc!=SQLITE_OK ) return rc;
  if( p==0 ){
    p = atomicConnNew(db);
    if( p==0 ){
      *pzErrMsg = sqlite3_mprintf("atomic: out of memory");
      return SQLITE_NOMEM;
    }
  }
  /* Register what is not registered yet: everything on the first load,
  ** nothing on a later one (N2), the rest after a load that failed half
  ** way (registering a function again would fail while the statement
  ** that loads runs) */
  atomicConnRef(p);             /* Held until registration is over */
  while( rc==SQLITE_OK && p->nRegistered<ATM_N_STEP ){
    rc = atomicRegisterStep(db, p, p->nRegistered);
    if( rc==SQLITE_OK ) p->nRegistered++;
  }
  if( rc!=SQLITE_OK ){
    *pzErrMsg = sqlite3_mprintf("atomic: cannot register its functions: %s",
                                sqlite3_errmsg(db));
  }
  atomicConnUnref(p);
  return rc;
}

/*
** The entry point.
*/
#ifdef _WIN32
__declspec(dllexport)
#else
__attribute__((visibility("default")))
#endif
int sqlite3_atomic_init(sqlite3 *db, char **pzErrMsg,
                        const sqlite3_api_routines *pApi){
  return atomicInit(db, pzErrMsg, pApi);
}

#ifdef ATOMIC_TEST
/*
** Test builds: the entry point SQLite derives from the file name
** atomic_test.so, so that ".load ./atomic_test" works as ".load ./atomic"
** does.
*/
__attribute__((visibility("default")))
int sqlite3_atomictest_init(sqlite3 *db, char **pzErrMsg,
                            const sqlite3_api_routines *pApi){
  return atomicInit(db, pzErrMsg, pApi);
}
#endif
