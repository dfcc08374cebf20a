/*
** queue.c -- on_commit() and on_commit_robust(): callbacks, their queues,
** and running them after a commit.
**
**   on_commit(SQL [, ARG ...])         -> 1 if queued, 0 if it ran at once
**   on_commit_robust(SQL [, ARG ...])  -> the same; a failure is logged
**
** SQL is exactly one statement (a trailing ';', white space and comments
** are fine) and must prepare now: its tables must exist.  The ARGs are
** bound to its parameters ?1, ?2, ... and must be exactly as many as
** sqlite3_bind_parameter_count() says.  Inside an atomic block the
** callback is queued (C2); it runs after the outermost block commits (C7)
** or is discarded if what queued it is rolled back (C6).  With no block
** and no transaction it runs at once (C3).  With no block inside a
** transaction (manual mode) it is refused (C4), and from a statement that
** writes in autocommit mode too (C5).  A NULL or non-text SQL, a bad
** statement or a wrong argument count is an error and nothing is queued
** (C1).
**
** A plain callback that fails after a commit stops the run: the callbacks
** after it are discarded and the commit's atomic_exit() raises, with
** SQLITE_ERROR (never the callback's own code, which may invite a retry
** of committed work), an error that starts "on_commit callback failed
** after commit:" and quotes the callback's error and its code name.  A
** robust one is logged through sqlite3_log() and the run goes on.
**
** HOW IT WORKS
**
** A callback is one allocation: the struct, its argument values and the
** bytes of its text and blob arguments; its statement text is shared
** (sqltext.c).  It gets a serial number when it is queued; a savepoint
** level remembers the last serial number queued before it opened, so a
** rollback to it frees just the callbacks after that, from the end of the
** queue (atomicQueueCut).
**
** To run the ready queue it is detached first and then run in order, each
** callback in autocommit mode with no block open; callbacks queued by a
** block that a running callback opens go to the fresh ready queue and run
** when that block commits, before the rest of the outer run (C8).  A
** callback that leaves a block or a transaction open (it failed half way,
** or forgot its atomic_exit()) has that rolled back at once, so that the
** next one runs in autocommit mode as it should; if the rollback fails
** (an interrupt), the transaction is doomed (state.c) and the run stops.
*/
#include "atomicInt.h"
#include <stddef.h>

/**************************************************************************
** Queues
*/

/*
** Append pCb at the end of queue pQ.
*/
ATM_PRIVATE void atomicQueueAppend(AtomicQueue *pQ, AtomicCallback *pCb){
  pCb->pNext = 0;
  pCb->pPrev = pQ->pLast;
  if( pQ->pLast ){
    pQ->pLast->pNext = pCb;
  }else{
    pQ->pFirst = pCb;
  }
  pQ->pLast = pCb;
}

/*
** Free the callbacks at the end of queue pQ whose serial number is
** greater than iMark (0: all of them), newest first: O(callbacks freed).
*/
ATM_PRIVATE void atomicQueueCut(AtomicQueue *pQ, i64 iMark){
  while( pQ->pLast && pQ->pLast->iSeq>iMark ){
    AtomicCallback *pCb = pQ->pLast;
    pQ->pLast = pCb->pPrev;
    if( pQ->pLast ){
      pQ->pLast->pNext = 0;
    }else{
      pQ->pFirst = 0;
    }
    pCb->pNext = pCb->pPrev = 0;
    atomicCallbackUnref(pCb);
  }
}

/*
** Move every callback of pSrc to the end of pDest.
*/
ATM_PRIVATE void atomicQueueMove(AtomicQueue *pDest, AtomicQueue *pSrc){
  if( pSrc->pFirst ){
    if( pDest->pLast ){
      pDest->pLast->pNext = pSrc->pFirst;
      pSrc->pFirst->pPrev = pDest->pLast;
    }else{
      pDest->pFirst = pSrc->pFirst;
    }
    pDest->pLast = pSrc->pLast;
    pSrc->pFirst = pSrc->pLast = 0;
  }
}

/*
** Drop one reference to a callback; the last one frees it.
*/
ATM_PRIVATE void atomicCallbackUnref(AtomicCallback *pCb){
  if( --pCb->nRef<=0 ){
    AtomicSql *pSql = pCb->pSql;
    sqlite3_free(pCb);
    atomicSqlUnref(pSql);
  }
}

/*
** Make a callback for pSql with the nArg values apArg, holding one
** reference.  Returns NULL on OOM.
*/
static AtomicCallback *queueCallbackNew(AtomicSql *pSql, int nArg,
                                        sqlite3_value **apArg,
                                        int bRobust, int iDepth){
  i64 nByte = offsetof(AtomicCallback, aArg) + sizeof(AtomicValue)*(i64)nArg;
  AtomicCallback *pCb;
  char *zBuf;
  int i;
  for(i=0; i<nArg; i++){
    int eType = sqlite3_value_type(apArg[i]);
    if( eType==SQLITE_TEXT || eType==SQLITE_BLOB ){
      nByte += sqlite3_value_bytes(apArg[i]);
    }
  }
  pCb = atomicMalloc(nByte);
  if( pCb==0 ) return 0;
  memset(pCb, 0, offsetof(AtomicCallback, aArg));
  pCb->pSql = pSql;
  pCb->iDepth = iDepth;
  pCb->nArg = nArg;
  pCb->nRef = 1;
  pCb->bRobust = (u8)bRobust;
  zBuf = (char*)&pCb->aArg[nArg];
  for(i=0; i<nArg; i++){
    AtomicValue *pV = &pCb->aArg[i];
    const void *pData = 0;
    pV->eType = sqlite3_value_type(apArg[i]);
    pV->n = 0;
    switch( pV->eType ){
      case SQLITE_INTEGER: pV->u.i = sqlite3_value_int64(apArg[i]);  break;
      case SQLITE_FLOAT:   pV->u.r = sqlite3_value_double(apArg[i]); break;
      case SQLITE_TEXT:
        pData = sqlite3_value_text(apArg[i]);
        pV->n = sqlite3_value_bytes(apArg[i]);
        if( pData==0 ){ sqlite3_free(pCb); return 0; }
        break;
      case SQLITE_BLOB:
        pData = sqlite3_value_blob(apArg[i]);
        pV->n = sqlite3_value_bytes(apArg[i]);
        if( pData==0 && pV->n>0 ){ sqlite3_free(pCb); return 0; }
        break;
      default:
        pV->eType = SQLITE_NULL;
        break;
    }
    if( pV->eType==SQLITE_TEXT || pV->eType==SQLITE_BLOB ){
      if( pV->n>0 ) memcpy(zBuf, pData, pV->n);
      pV->u.z = zBuf;
      zBuf += pV->n;
    }
  }
  pSql->nRef++;
  return pCb;
}

/**************************************************************************
** Running callbacks
*/

/*
** Bind the arguments of pCb to pStmt.  Returns SQLITE_OK or an error code.
*/
static int queueBind(sqlite3_stmt *pStmt, AtomicCallback *pCb){
  int rc = SQLITE_OK;
  int i;
  for(i=0; rc==SQLITE_OK && i<pCb->nArg; i++){
    AtomicValue *pV = &pCb->aArg[i];
    switch( pV->eType ){
      case SQLITE_INTEGER:
        rc = sqlite3_bind_int64(pStmt, i+1, pV->u.i);
        break;
      case SQLITE_FLOAT:
        rc = sqlite3_bind_double(pStmt, i+1, pV->u.r);
        break;
      case SQLITE_TEXT:
        rc = sqlite3_bind_text(pStmt, i+1, pV->u.z, pV->n, SQLITE_STATIC);
        break;
      case SQLITE_BLOB:
        rc = sqlite3_bind_blob(pStmt, i+1, pV->u.z, pV->n, SQLITE_STATIC);
        break;
      default:
        rc = sqlite3_bind_null(pStmt, i+1);
        break;
    }
  }
  return rc;
}

/*
** Run one callback's statement to completion, in autocommit mode with no
** block open.  Returns SQLITE_OK, or its error code with *pzErr set to the
** message (NULL on OOM).
*/
static int queueRunOne(AtomicConn *p, AtomicCallback *pCb, char **pzErr){
  AtomicSql *pSql = pCb->pSql;
  sqlite3_stmt *pStmt = pSql->pStmt;
  int bOwn = 0;
  int rc;
  *pzErr = 0;
  if( p->nRunDepth>=ATM_MAX_RUN_DEPTH ){
    *pzErr = atomicMprintf("on_commit() callbacks are nested more than %d "
                           "deep", ATM_MAX_RUN_DEPTH);
    return SQLITE_ERROR;
  }
  if( pStmt==0 || sqlite3_stmt_busy(pStmt) ){
    /* Not kept, or a callback with the same text is running below us */
    rc = atomicSqlPrepare(p, pSql->zSql, pSql->nSql, &pStmt, pzErr);
    if( rc!=SQLITE_OK ) return rc;
    if( pSql->pStmt==0 ){
      atomicSqlKeep(pSql, pStmt);
    }else{
      bOwn = 1;
    }
  }
  rc = queueBind(pStmt, pCb);
  if( rc==SQLITE_OK ){
    p->nRunDepth++;
    rc = atomicStep(p, pStmt);
    p->nRunDepth--;
    if( rc!=SQLITE_OK ){
      *pzErr = atomicMprintf("%s", atomicErrmsg(p));
    }else if( !bOwn ){
      atomicSqlRan(pSql);
    }
  }else{
    *pzErr = atomicMprintf("%s", sqlite3_errmsg(p->db));
  }
  sqlite3_clear_bindings(pStmt);
  if( bOwn ) sqlite3_finalize(pStmt);
  return rc;
}

/*
** A callback just ran, and callbacks must leave no block and no
** transaction behind.  If it did (it failed half way, or forgot its
** atomic_exit()), roll that back and close the blocks.  Returns 0 if it
** left nothing, 1 if what it left is gone, 2 if its ROLLBACK failed and
** the transaction is doomed; for 1 and 2, *pzNote says what happened
** (NULL on OOM).
*/
static int queueUnwind(AtomicConn *p, char **pzNote){
  int nBlock = p->nBlock;
  *pzNote = 0;
  atomicSync(p);
  if( p->nBlock==0 && sqlite3_get_autocommit(p->db) ) return 0;
  if( !sqlite3_get_autocommit(p->db) ){
    char *zErr = 0;
    int rc;
    int eHow = atomicEndTxn(p, 0, &rc, &zErr);
    while( p->nBlock>0 ) atomicBlockPop(p);
    if( eHow==ATM_END_NONE ){
      atomicDoom(p);
      *pzNote = atomicMprintf("the callback left %s open, and its ROLLBACK "
          "failed: %s; nothing of it was committed, but the transaction is "
          "still open: the next call of a function of this extension rolls "
          "it back (or call atomic_rollback())",
          nBlock ? "an 'atomic' block" : "a transaction",
          atomicOom(zErr));
      sqlite3_free(zErr);
      return 2;
    }
    sqlite3_free(zErr);
    *pzNote = atomicMprintf("the callback left %s open; it was rolled back",
        nBlock ? "an 'atomic' block" : "a transaction");
    return 1;
  }
  while( p->nBlock>0 ) atomicBlockPop(p);
  *pzNote = atomicMprintf("the callback left an 'atomic' block open; it "
                          "was closed");
  return 1;
}

/*
** Run one callback and unwind what it left.  Returns SQLITE_OK, or an
** error code; *prcOwn is the callback's own result.  *pzErr is its own
** error message, *pzNote what the unwind did (each NULL if none or on
** OOM), and *peUnwind queueUnwind()'s answer.  The caller frees both.
*/
static int queueRun(AtomicConn *p, AtomicCallback *pCb, int *prcOwn,
                    char **pzErr, char **pzNote, int *peUnwind){
  int rc = queueRunOne(p, pCb, pzErr);
  *prcOwn = rc;
  *peUnwind = queueUnwind(p, pzNote);
  if( rc==SQLITE_OK && *peUnwind ) rc = SQLITE_ERROR;
  return rc;
}

/*
** The message of a callback that failed: its own error (with the name of
** its result code rcOwn if bCode), then what the unwind did, after "; ".
** In memory from sqlite3_malloc(), or NULL on OOM.
*/
static char *queueMessage(int rcOwn, const char *zErr, const char *zNote,
                          int eUnwind, int bCode){
  if( (rcOwn!=SQLITE_OK && zErr==0) || (eUnwind && zNote==0) ) return 0;
  if( rcOwn==SQLITE_OK ) return atomicMprintf("%s", zNote);
  return atomicMprintf("%s%s%s%s%s%s", zErr, bCode ? " [" : "",
      bCode ? atomicCodeName(rcOwn) : "", bCode ? "]" : "",
      zNote ? "; " : "", zNote ? zNote : "");
}

/*
** Run the ready queue (C7).  Returns SQLITE_OK, or SQLITE_ERROR when a
** plain callback failed (or a callback left a transaction that could not
** be rolled back), with *pzErr set to the message (NULL on OOM); the
** callbacks after it are then discarded.
*/
ATM_PRIVATE int atomicRunReady(AtomicConn *p, char **pzErr){
  AtomicCallback *pList = atomicReadyTake(p);
  *pzErr = 0;
  while( pList ){
    AtomicCallback *pCb = pList;
    char zClip[ATM_CLIP+4];
    char *zErr = 0;
    char *zNote = 0;
    char *zMsg = 0;
    int eUnwind = 0;
    int rcOwn;
    int rc;
    pList = pCb->pNext;
    pCb->pNext = 0;
    if( pList ) pList->pPrev = 0;
    rc = queueRun(p, pCb, &rcOwn, &zErr, &zNote, &eUnwind);
    if( rc!=SQLITE_OK && pCb->bRobust && eUnwind<2 ){
      zMsg = queueMessage(rcOwn, zErr, zNote, eUnwind, 0);
      sqlite3_log(rc, "Error calling %s in on_commit() during transaction "
                  "(%s).", atomicClip(pCb->pSql->zSql, zClip),
                  atomicOom(zMsg));
      rc = SQLITE_OK;
    }else if( rc!=SQLITE_OK ){
      int nLeft = 0;
      AtomicCallback *pX;
      for(pX=pList; pX; pX=pX->pNext) nLeft++;
      zMsg = queueMessage(rcOwn, zErr, zNote, eUnwind, 1);
      if( zMsg && nLeft==0 ){
        *pzErr = atomicMprintf("on_commit callback failed after commit: "
            "%s: %s (the transaction was committed)",
            atomicClip(pCb->pSql->zSql, zClip), zMsg);
      }else if( zMsg ){
        *pzErr = atomicMprintf("on_commit callback failed after commit: "
            "%s: %s (the transaction was committed; %d later callback%s "
            "not run)", atomicClip(pCb->pSql->zSql, zClip), zMsg, nLeft,
            nLeft==1 ? " was" : "s were");
      }
      while( pList ){
        pX = pList;
        pList = pX->pNext;
        atomicCallbackUnref(pX);
      }
    }
    sqlite3_free(zErr);
    sqlite3_free(zNote);
    sqlite3_free(zMsg);
    atomicCallbackUnref(pCb);
    if( rc!=SQLITE_OK ) return SQLITE_ERROR;
  }
  return SQLITE_OK;
}

/**************************************************************************
** The SQL functions
*/

static void queueOnCommit(sqlite3_context *ctx, int argc,
                          sqlite3_value **argv, int bRobust){
  AtomicConn *p = atomicConn(ctx);
  const char *zFunc = bRobust ? "on_commit_robust" : "on_commit";
  const char *zSql;
  AtomicSql *pSql = 0;
  AtomicCallback *pCb;
  char *zErr = 0;
  char *zNote = 0;
  char *zMsg = 0;
  int eUnwind = 0;
  int rcOwn = SQLITE_OK;
  int rc;

  if( argc<1 || sqlite3_value_type(argv[0])!=SQLITE_TEXT ){
    atomicError(ctx, SQLITE_ERROR, "%s(): the first argument must be the "
                "text of one SQL statement", zFunc);
    return;
  }
  if( atomicCheck(p, ctx, zFunc, ATM_CHECK_ORPHAN|ATM_CHECK_BROKEN) ){
    return;
  }
  if( p->bDoomed ){
    if( atomicWriterActive(p) ){
      atomicError(ctx, SQLITE_ERROR, "%s(): %s; roll it back first with "
                  "atomic_rollback()", zFunc, atomicDoomedText);
      return;
    }
    if( atomicRepair(p, ctx, zFunc) ) return;
  }
  zSql = (const char*)sqlite3_value_text(argv[0]);
  if( zSql==0 ){
    sqlite3_result_error_nomem(ctx);
    return;
  }
  rc = atomicSqlGet(p, zSql, sqlite3_value_bytes(argv[0]), &pSql, &zErr);
  if( rc!=SQLITE_OK ){
    atomicError(ctx, rc, "%s(): %s", zFunc, atomicOom(zErr));
    sqlite3_free(zErr);
    return;
  }
  if( pSql->nParam!=argc-1 ){
    atomicError(ctx, SQLITE_ERROR, "%s(): the statement has %d parameter%s "
        "but %d argument%s given after it", zFunc, pSql->nParam,
        pSql->nParam==1 ? "" : "s", argc-1, argc==2 ? " was" : "s were");
    return;
  }

  if( p->nBlock==0 ){
    if( !sqlite3_get_autocommit(p->db) ){
      atomicError(ctx, SQLITE_ERROR, "%son_commit() cannot be used in "
          "manual transaction management; queue callbacks inside an "
          "'atomic' block, or commit first",
          bRobust ? "on_commit_robust(): " : "");
      return;
    }
    if( atomicWriterActive(p) ){
      atomicError(ctx, SQLITE_ERROR, "%s(): called by a statement that "
          "writes, with no 'atomic' block open; wrap that statement in a "
          "block: SELECT atomic_enter(); <the statement>; "
          "SELECT atomic_exit();", zFunc);
      return;
    }
  }

  pCb = queueCallbackNew(pSql, argc-1, &argv[1], bRobust, p->nBlock);
  if( pCb==0 ){
    sqlite3_result_error_nomem(ctx);
    return;
  }
  if( p->nBlock>0 ){
    atomicPendingPush(p, pCb);
    sqlite3_result_int(ctx, 1);
    return;
  }

  /* C3: no block and no transaction: run it now */
  rc = queueRun(p, pCb, &rcOwn, &zErr, &zNote, &eUnwind);
  zMsg = rc==SQLITE_OK ? 0 : queueMessage(rcOwn, zErr, zNote, eUnwind, 0);
  if( rc==SQLITE_OK ){
    sqlite3_result_int(ctx, 0);
  }else if( bRobust && eUnwind<2 ){
    char zClip[ATM_CLIP+4];
    sqlite3_log(rc, "Error calling %s in on_commit() (%s).",
                atomicClip(pSql->zSql, zClip), atomicOom(zMsg));
    sqlite3_result_int(ctx, 0);
  }else if( zMsg==0 ){
    sqlite3_result_error_nomem(ctx);
  }else{
    sqlite3_result_error(ctx, zMsg, -1);
    sqlite3_result_error_code(ctx, rc);
  }
  sqlite3_free(zErr);
  sqlite3_free(zNote);
  sqlite3_free(zMsg);
  atomicCallbackUnref(pCb);
}

/*
** on_commit(sql, args...)
*/
ATM_PRIVATE void atomicOnCommitFunc(sqlite3_context *ctx, int argc,
                                    sqlite3_value **argv){
  queueOnCommit(ctx, argc, argv, 0);
}

/*
** on_commit_robust(sql, args...)
*/
ATM_PRIVATE void atomicOnCommitRobustFunc(sqlite3_context *ctx, int argc,
                                          sqlite3_value **argv){
  queueOnCommit(ctx, argc, argv, 1);
}
