/*
** block.c -- nested atomic blocks and the rollback flag.
**
**   atomic_enter([SAVEPOINT [, DURABLE]])  -> the new depth (1 = outermost)
**   atomic_exit([OK])                      -> 1 if the work was kept, else 0
**   set_rollback(FLAG)                     -> FLAG as 0 or 1
**   get_rollback()                         -> the flag, 0 or 1
**   atomic_depth()                         -> open blocks, orphans included
**
** SAVEPOINT defaults to 1, DURABLE to 0 and OK to 1; each takes an integer
** (or a text or real holding one, SPEC section 2): 0 is false, anything
** else true; NULL is an error.  The outermost block begins the
** transaction with BEGIN <transaction_mode> and commits or rolls it back
** when it exits; inner blocks are savepoints, or no SQL at all with
** SAVEPOINT=0.  atomic_exit(0) says the caller saw an error: the block
** rolls back and nothing is raised.  See SPEC.md rules E, X and F, and
** the state machine in state.c.
**
** Example:
**
**   SELECT atomic_enter();                -- BEGIN
**   INSERT INTO t VALUES(1);
**   SELECT atomic_enter();                -- SAVEPOINT
**   INSERT INTO t VALUES(2);
**   SELECT atomic_exit(0);                -- ROLLBACK TO, RELEASE
**   SELECT atomic_exit();                 -- COMMIT: t holds 1
**
** HOW IT WORKS
**
** Every block savepoint has the same per-connection name, so the three
** statements that make, release and roll back to it are prepared once.
** A block remembers the level its savepoint has in the level stack that
** temp.atomic_txn keeps (txn.c); that tells, on exit, whether raw SQL
** made the savepoint vanish, in which case no SQL is issued for it.
**
** What each statement did is read from what SQLite reported, never from
** its return code alone.  When the extension's own ROLLBACK fails (an
** interrupt lasts until the calling statement ends), the transaction is
** DOOMED: the error says it is still open, and the next call of a
** function of the extension rolls it back.
**
** The two hot paths, entering an inner block with a savepoint and keeping
** it, issue one cached statement and rely on SQLite refusing SAVEPOINT
** and RELEASE while a statement writes (SQLITE_BUSY) to detect a caller
** that writes (E4).  Every other path checks for such a caller first.
*/
#include "atomicInt.h"

/* What a failed inner block's error says about what happens next */
static const char *blockNext(AtomicConn *p){
  return p->nBlock>0 ? "the enclosing block will roll back"
                     : "the application's transaction is broken: roll it "
                       "back with atomic_rollback()";
}

/* What the error of a doomed transaction tells the user to do */
#define ATM_DOOMED_HINT "nothing was committed, but the transaction is " \
  "still open: the next call of a function of this extension rolls it " \
  "back (or call atomic_rollback())"

/*
** atomic_enter(): the outermost block began a transaction with BEGIN but
** cannot follow it (zErr, code rc): roll it back, and report.  If the
** ROLLBACK fails too, the transaction is doomed.
*/
static void enterUndoBegin(sqlite3_context *ctx, AtomicConn *p, int rc,
                           const char *zErr){
  char *zErr2 = 0;
  int rc2;
  if( !sqlite3_get_autocommit(p->db)
   && atomicEndTxn(p, 0, &rc2, &zErr2)==ATM_END_NONE
  ){
    atomicDoom(p);
    atomicError(ctx, rc, "atomic_enter(): cannot follow the transaction "
        "through temp.atomic_txn: %s; the ROLLBACK of the transaction it "
        "had begun failed too: %s; " ATM_DOOMED_HINT,
        atomicOom(zErr), atomicOom(zErr2));
  }else{
    atomicError(ctx, rc, "atomic_enter(): cannot follow the transaction "
        "through temp.atomic_txn: %s", atomicOom(zErr));
  }
  sqlite3_free(zErr2);
}

/*
** atomic_enter([savepoint [, durable]])
*/
ATM_PRIVATE void atomicEnterFunc(sqlite3_context *ctx, int argc,
                                 sqlite3_value **argv){
  AtomicConn *p = atomicConn(ctx);
  int bSavepoint = 1;
  int bDurable = 0;
  int iLevel = ATM_NO_SAVEPOINT;
  char *zErr = 0;
  int rc;

  if( argc>0 && atomicArgBool(ctx, "atomic_enter", "savepoint", argv[0],
                              &bSavepoint) ){
    return;
  }
  if( argc>1 && atomicArgBool(ctx, "atomic_enter", "durable", argv[1],
                              &bDurable) ){
    return;
  }
  atomicSync(p);
  if( p->eOrphan ){
    atomicCheck(p, ctx, "atomic_enter", ATM_CHECK_ORPHAN);
    return;
  }
  if( p->nBlock>0 ){
    /* E3: an inner block, with a savepoint unless it fails already */
    if( bDurable ){
      atomicError(ctx, SQLITE_ERROR, "atomic_enter(): A durable atomic "
          "block cannot be nested within another atomic block.");
      return;
    }
    if( atomicBlockReserve(p) ){
      sqlite3_result_error_nomem(ctx);
      return;
    }
    if( bSavepoint && !p->bRollback ){
      rc = atomicSpOpen(p, p->nBlock+1, 0, &iLevel);
      if( rc!=SQLITE_OK ){
        if( (rc&0xff)==SQLITE_BUSY && atomicWriterActive(p) ){
          atomicErrorWriter(ctx, p, "atomic_enter");
        }else{
          atomicErrorDb(ctx, p, rc, "atomic_enter");
        }
        return;
      }
    }else if( atomicWriterActive(p) ){
      atomicErrorWriter(ctx, p, "atomic_enter");
      return;
    }
    atomicBlockPush(p, iLevel, 0);
    sqlite3_result_int(ctx, p->nBlock);
    return;
  }

  /* The outermost block */
  if( atomicCheck(p, ctx, "atomic_enter",
                  ATM_CHECK_WRITER|ATM_CHECK_DOOMED) ){
    return;
  }
  if( bDurable && !sqlite3_get_autocommit(p->db) ){
    atomicError(ctx, SQLITE_ERROR, "atomic_enter(): A durable atomic block "
        "cannot be nested within another atomic block. (A transaction is "
        "open: commit or roll it back first.)");
    return;
  }
  if( atomicBlockReserve(p) ){
    sqlite3_result_error_nomem(ctx);
    return;
  }
  if( sqlite3_get_autocommit(p->db) ){
    /* E2: the block begins the transaction and owns it.  BEGIN happened
    ** if SQLite left autocommit mode, whatever it returned */
    rc = atomicExec(p, ATM_STMT_BEGIN);
    if( sqlite3_get_autocommit(p->db) ){
      if( rc==SQLITE_OK ){
        atomicDidNothing(p, "BEGIN did nothing (an authorizer that "
                            "ignores it?)");
        rc = SQLITE_ERROR;
      }
      atomicErrorDb(ctx, p, rc, "atomic_enter");
      return;
    }
    rc = atomicJoin(p, &zErr);
    if( rc!=SQLITE_OK ){
      enterUndoBegin(ctx, p, rc, zErr);
      sqlite3_free(zErr);
      return;
    }
    atomicBlockPush(p, ATM_NO_SAVEPOINT, 1);
  }else{
    /* E3: the outermost block inside the application's transaction */
    rc = atomicJoin(p, &zErr);
    if( rc!=SQLITE_OK ){
      atomicError(ctx, rc, "atomic_enter(): cannot follow the transaction "
          "through temp.atomic_txn: %s", atomicOom(zErr));
      sqlite3_free(zErr);
      return;
    }
    if( bSavepoint ){
      rc = atomicSpOpen(p, 1, 0, &iLevel);
      if( rc!=SQLITE_OK ){
        atomicErrorDb(ctx, p, rc, "atomic_enter");
        return;
      }
    }
    atomicBlockPush(p, iLevel, 0);
  }
  sqlite3_result_int(ctx, 1);
}

/*
** atomic_exit() of the owning block: COMMIT and run the callbacks (X2,
** C7), or ROLLBACK (X3).  If COMMIT fails, roll back and raise its error
** (X4); if it refused because a statement writes, raise E4's error and
** change nothing.  If the ROLLBACK fails too, the transaction is doomed.
*/
static void exitOwner(sqlite3_context *ctx, AtomicConn *p, int bKeep){
  char *zErr = 0;
  char *zErr2 = 0;
  int rc, rc2;
  int eHow;
  if( bKeep ){
    eHow = atomicEndTxn(p, 1, &rc, &zErr);
    if( eHow==ATM_END_COMMIT ){
      sqlite3_free(zErr);
      atomicBlockPop(p);
      rc = atomicRunReady(p, &zErr);
      if( rc!=SQLITE_OK ){
        sqlite3_result_error(ctx, zErr ? zErr : "on_commit callback failed "
            "after commit (no memory for the message); the transaction "
            "was committed", -1);
        sqlite3_result_error_code(ctx, SQLITE_ERROR);
      }else{
        sqlite3_result_int(ctx, 1);
      }
      sqlite3_free(zErr);
      return;
    }
    if( eHow==ATM_END_NONE && (rc&0xff)==SQLITE_BUSY && atomicWriterActive(p) ){
      /* COMMIT refused before doing anything: a statement writes (E4) */
      sqlite3_free(zErr);
      atomicErrorWriter(ctx, p, "atomic_exit");
      return;
    }
    if( eHow==ATM_END_NONE
     && atomicEndTxn(p, 0, &rc2, &zErr2)==ATM_END_NONE
    ){
      atomicBlockPop(p);
      atomicDoom(p);
      atomicError(ctx, rc, "atomic_exit(): COMMIT failed: %s; the ROLLBACK "
          "that followed failed too: %s; " ATM_DOOMED_HINT,
          atomicOom(zErr), atomicOom(zErr2));
    }else{
      atomicBlockPop(p);
      atomicError(ctx, rc, "atomic_exit(): COMMIT failed, so the "
          "transaction was rolled back: %s", atomicOom(zErr));
    }
  }else{
    eHow = atomicEndTxn(p, 0, &rc, &zErr);
    atomicBlockPop(p);
    if( eHow==ATM_END_NONE ){
      atomicDoom(p);
      atomicError(ctx, rc, "atomic_exit(): ROLLBACK failed: %s; "
                  ATM_DOOMED_HINT, atomicOom(zErr));
    }else{
      sqlite3_result_int(ctx, 0);
    }
  }
  sqlite3_free(zErr);
  sqlite3_free(zErr2);
}

/*
** atomic_exit() of an inner block whose RELEASE failed (rc, message
** zErr; nEnd was p->nEnd before it): X4, roll back to the savepoint and
** raise.  If SQLite rolled back the whole transaction instead, the block
** and those around it are orphans.  If ROLLBACK TO fails too, the flag is
** set and the error says that the work is still there.
*/
static void exitReleaseFailed(sqlite3_context *ctx, AtomicConn *p, int rc,
                              u32 nEnd){
  char *zErr = atomicMprintf("%s", atomicErrmsg(p));
  int iLevel = p->aBlock[p->nBlock-1].iLevel;
  int rc2 = SQLITE_OK;
  if( p->nEnd==nEnd ){
    rc2 = atomicSpClose(p, iLevel, p->nBlock, 1, 0, 0);
    if( rc2==SQLITE_OK ){
      /* Rolled back.  If RELEASE fails again the savepoint stays open,
      ** nobody's (atomicBlockPop) */
      atomicSpClose(p, iLevel, p->nBlock, 0, 1, 0);
      atomicBlockPop(p);
      atomicError(ctx, rc, "atomic_exit(): RELEASE failed, so the block "
          "was rolled back: %s", atomicOom(zErr));
      sqlite3_free(zErr);
      return;
    }
  }
  if( p->nEnd!=nEnd ){
    atomicBlockPop(p);
    atomicError(ctx, rc, "atomic_exit(): %s failed and SQLite rolled back "
        "the whole transaction: %s%s", rc2 ? "ROLLBACK TO" : "RELEASE",
        rc2 ? atomicErrmsg(p) : (atomicOom(zErr)),
        p->nBlock>0 ? "; the enclosing blocks are orphans: call "
                      "atomic_exit() for each" : "");
  }else{
    atomicFlagSet(p, 1, 1);
    atomicBlockPop(p);
    atomicError(ctx, rc, "atomic_exit(): RELEASE failed: %s; the ROLLBACK "
        "TO that followed failed too: %s; the block's work is still in the "
        "transaction, and the rollback flag is set: %s",
        atomicOom(zErr), atomicErrmsg(p), blockNext(p));
  }
  sqlite3_free(zErr);
}

/*
** atomic_exit([ok])
*/
ATM_PRIVATE void atomicExitFunc(sqlite3_context *ctx, int argc,
                                sqlite3_value **argv){
  AtomicConn *p = atomicConn(ctx);
  AtomicBlock *pBlock;
  int bOk = 1;
  int bKeep;
  int rc;

  if( argc>0 && atomicArgBool(ctx, "atomic_exit", "ok", argv[0], &bOk) ){
    return;
  }
  atomicSync(p);
  if( p->nBlock==0 ){
    if( atomicWriterActive(p) ){
      atomicErrorWriter(ctx, p, "atomic_exit");
    }else{
      atomicError(ctx, SQLITE_ERROR,
                  "atomic_exit() called outside of an 'atomic' block");
    }
    return;
  }
  pBlock = &p->aBlock[p->nBlock-1];
  bKeep = bOk && !p->bRollback;

  /* The hot path: keep an inner block whose savepoint is there (X2) */
  if( bKeep && p->eOrphan==ATM_END_NONE
   && atomicLevelAlive(p, pBlock->iLevel, p->nBlock)
  ){
    int nBefore = p->nLevel;
    u32 nEnd = p->nEnd;
    rc = atomicExecHot(p, ATM_STMT_RELEASE);
    /* (An end of the transaction leaves no level: nLevel is then 0) */
    if( p->nLevel>pBlock->iLevel && p->nLevel<nBefore ){
      /* A raw savepoint with the same name shadowed it: go on to ours */
      rc = atomicSpClose(p, pBlock->iLevel, p->nBlock, 0, 1, 0);
    }
    if( p->nLevel<=pBlock->iLevel && p->nEnd==nEnd ){
      atomicBlockPop(p);
      sqlite3_result_int(ctx, 1);
      return;
    }
    if( (rc&0xff)==SQLITE_BUSY && atomicWriterActive(p) ){
      atomicErrorWriter(ctx, p, "atomic_exit");
      return;
    }
    if( rc==SQLITE_OK ){
      atomicDidNothing(p, "RELEASE did nothing (an authorizer that "
                          "ignores it?)");
      rc = SQLITE_ERROR;
    }
    exitReleaseFailed(ctx, p, rc, nEnd);
    return;
  }

  /* The owning block keeps its work: SQLite's COMMIT refuses by itself,
  ** before doing anything, while a statement writes */
  if( bKeep && p->eOrphan==ATM_END_NONE && p->nBlock==1 && p->bOwner ){
    exitOwner(ctx, p, 1);
    return;
  }

  if( atomicWriterActive(p) ){
    atomicErrorWriter(ctx, p, "atomic_exit");
    return;
  }

  /* X5: an orphan closes with no SQL */
  if( p->eOrphan ){
    const char *zText = atomicOrphanText(p);
    atomicBlockPop(p);
    atomicError(ctx, SQLITE_ERROR, "atomic_exit(): %s", zText);
    return;
  }

  if( p->nBlock==1 && p->bOwner ){
    exitOwner(ctx, p, 0);
    return;
  }

  if( bKeep ){
    if( pBlock->iLevel==ATM_NO_SAVEPOINT ){
      /* X2: a savepoint-less block does nothing */
      atomicBlockPop(p);
      sqlite3_result_int(ctx, 1);
    }else{
      /* X5: raw SQL released or rolled back past the block's savepoint */
      atomicFlagSet(p, 1, 1);
      atomicBlockPop(p);
      atomicError(ctx, SQLITE_ERROR, "atomic_exit(): the block's savepoint "
          "was released or rolled back outside of the 'atomic' block; %s",
          blockNext(p));
    }
    return;
  }

  /* X3: roll back to the savepoint, or pass the failure up when there is
  ** none to roll back to */
  atomicFlagSet(p, 0, 0);
  if( atomicLevelAlive(p, pBlock->iLevel, p->nBlock) ){
    u32 nEnd = p->nEnd;
    rc = atomicSpClose(p, pBlock->iLevel, p->nBlock, 1, 0, 0);
    if( rc==SQLITE_OK ){
      /* If RELEASE fails the savepoint stays open, nobody's */
      atomicSpClose(p, pBlock->iLevel, p->nBlock, 0, 1, 0);
      atomicBlockPop(p);
      sqlite3_result_int(ctx, 0);
      return;
    }
    if( p->nEnd!=nEnd ){
      atomicBlockPop(p);
      atomicError(ctx, rc, "atomic_exit(): ROLLBACK TO failed and SQLite "
          "rolled back the whole transaction: %s%s", atomicErrmsg(p),
          p->nBlock>0 ? "; the enclosing blocks are orphans: call "
                        "atomic_exit() for each" : "");
      return;
    }
  }
  atomicFlagSet(p, 1, 1);
  atomicBlockPop(p);
  sqlite3_result_int(ctx, 0);
}

/*
** set_rollback(flag)
*/
ATM_PRIVATE void atomicSetRollbackFunc(sqlite3_context *ctx, int argc,
                                       sqlite3_value **argv){
  AtomicConn *p = atomicConn(ctx);
  int bFlag = 0;
  (void)argc;
  atomicSync(p);
  if( p->nBlock==0 ){
    atomicError(ctx, SQLITE_ERROR, "set_rollback(): The rollback flag "
                "doesn't work outside of an 'atomic' block.");
    return;
  }
  if( atomicArgBool(ctx, "set_rollback", "flag", argv[0], &bFlag) ) return;
  atomicFlagSet(p, bFlag, -1);
  sqlite3_result_int(ctx, bFlag);
}

/*
** get_rollback()
*/
ATM_PRIVATE void atomicGetRollbackFunc(sqlite3_context *ctx, int argc,
                                       sqlite3_value **argv){
  AtomicConn *p = atomicConn(ctx);
  (void)argc; (void)argv;
  atomicSync(p);
  if( p->nBlock==0 ){
    atomicError(ctx, SQLITE_ERROR, "get_rollback(): The rollback flag "
                "doesn't work outside of an 'atomic' block.");
    return;
  }
  sqlite3_result_int(ctx, p->bRollback);
}

/*
** atomic_depth()
*/
ATM_PRIVATE void atomicDepthFunc(sqlite3_context *ctx, int argc,
                                 sqlite3_value **argv){
  AtomicConn *p = atomicConn(ctx);
  (void)argc; (void)argv;
  atomicSync(p);
  sqlite3_result_int(ctx, p->nBlock);
}
