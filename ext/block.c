/*
** block.c -- nested atomic blocks and the rollback flag.
**
**   atomic_enter([SAVEPOINT [, DURABLE]])  -> the new depth (1 = outermost)
**   atomic_exit([OK])                      -> 1 if the work was kept, else 0
**   set_rollback(FLAG)                     -> FLAG as 0 or 1
**   get_rollback()                         -> the flag, 0 or 1
**   atomic_depth()                         -> open blocks, orphans included
**
** SAVEPOINT defaults to 1, DURABLE to 0 and OK to 1; each takes 0 or 1 (or
** any integer form, SPEC section 2); NULL is an error.  The outermost
** block begins the transaction with BEGIN <transaction_mode> and commits
** or rolls it back when it exits; inner blocks are savepoints, or no SQL
** at all with SAVEPOINT=0.  atomic_exit(0) says the caller saw an error:
** the block rolls back and nothing is raised.  See SPEC.md rules E, X and
** F, and the state machine in atomicInt.h.
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
** The two hot paths, entering an inner block with a savepoint and keeping
** it, issue one cached statement and rely on SQLite refusing SAVEPOINT
** and RELEASE while a statement writes (SQLITE_BUSY) to detect a caller
** that writes (E4).  Every other path checks for such a caller first.
*/
#include "atomicInt.h"

/*
** Remove the innermost block.  Manual savepoints that outlive it (it made
** no savepoint, so no SQL ended them) now belong to the enclosing block.
*/
void atomic_block_pop(AtomicConn *p){
  p->nBlock--;
  if( p->nBlock==0 ){
    p->bOwner = 0;
    if( p->eOrphan ){
      /* After the last orphan the connection works normally (X5) */
      p->eOrphan = ATOMIC_ORPHAN_NONE;
      p->bRollback = p->bBroken = 0;
    }
  }
  if( p->nManual ) atomic_manual_clamp(p);
}

/*
** atomic_enter([savepoint [, durable]])
*/
void atomicEnterFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  AtomicConn *p = (AtomicConn*)sqlite3_user_data(ctx);
  int bSavepoint = 1;
  int bDurable = 0;
  int bAuto;
  int iLevel = ATOMIC_NO_SAVEPOINT;
  int rc;

  if( argc>0 && atomic_arg_bool(ctx, "atomic_enter", "savepoint", argv[0],
                                &bSavepoint) ){
    return;
  }
  if( argc>1 && atomic_arg_bool(ctx, "atomic_enter", "durable", argv[1],
                                &bDurable) ){
    return;
  }
  bAuto = sqlite3_get_autocommit(p->db);
  if( p->eOrphan || (p->nBlock>0 && bAuto) ){
    atomic_check(p, ctx, "atomic_enter", ATOMIC_CHECK_ORPHAN);
    return;
  }
  if( bDurable && (p->nBlock>0 || !bAuto) ){
    atomic_error(ctx, SQLITE_ERROR, "atomic_enter(): A durable atomic block "
        "cannot be nested within another atomic block.%s",
        p->nBlock>0 ? "" : " (A transaction is open: commit or roll it "
        "back first.)");
    return;
  }
  if( p->nBlock>=p->nBlockAlloc
   && atomic_grow((void**)&p->aBlock, &p->nBlockAlloc, p->nBlock+1,
                  sizeof(AtomicBlock))
  ){
    sqlite3_result_error_nomem(ctx);
    return;
  }

  if( p->nBlock==0 && bAuto ){
    /* E2: the outermost block begins the transaction and owns it */
    char *zErr = 0;
    if( atomic_writer_active(p) ){
      atomic_error_writer(ctx, "atomic_enter");
      return;
    }
    rc = atomic_exec(p, ATOMIC_STMT_BEGIN);
    if( rc!=SQLITE_OK ){
      atomic_error_db(ctx, p, rc, "atomic_enter");
      return;
    }
    rc = atomic_join(p);
    if( rc!=SQLITE_OK ){
      char *zMsg = atomic_mprintf("%s", sqlite3_errmsg(p->db));
      atomic_end_txn(p, 0, &zErr);
      atomic_error(ctx, rc, "atomic_enter(): cannot follow the transaction "
          "through temp.atomic_txn: %s", zMsg ? zMsg : "out of memory");
      sqlite3_free(zMsg);
      sqlite3_free(zErr);
      return;
    }
    p->bOwner = 1;
    p->bRollback = p->bBroken = 0;
  }else{
    /* E3: a savepoint, or no SQL at all */
    int bOuter = p->nBlock==0;
    if( bOuter && !p->bJoined ){
      rc = atomic_join(p);
      if( rc!=SQLITE_OK ){
        atomic_error(ctx, rc, "atomic_enter(): cannot follow the transaction "
            "through temp.atomic_txn: %s", sqlite3_errmsg(p->db));
        return;
      }
    }
    if( bSavepoint && (bOuter || !p->bRollback) ){
      rc = atomic_sp_open(p, p->nBlock+1, 0, &iLevel);
      if( (rc&0xff)==SQLITE_BUSY && atomic_writer_active(p) ){
        atomic_error_writer(ctx, "atomic_enter");
        return;
      }
      if( rc!=SQLITE_OK ){
        atomic_error_db(ctx, p, rc, "atomic_enter");
        return;
      }
    }else if( atomic_writer_active(p) ){
      atomic_error_writer(ctx, "atomic_enter");
      return;
    }
    if( bOuter ){
      p->bOwner = 0;
      p->bRollback = p->bBroken = 0;
    }
  }
  p->aBlock[p->nBlock++].iLevel = iLevel;
  sqlite3_result_int(ctx, p->nBlock);
}

/*
** The owning block exits: COMMIT and run the callbacks (X2, C7), or
** ROLLBACK (X3).  If COMMIT fails, roll back and raise its error (X4);
** if it refused because a statement writes, raise E4's error and change
** nothing.
*/
static void atomic_exit_owner(sqlite3_context *ctx, AtomicConn *p,
                              int bKeep){
  char *zErr = 0;
  int rc;
  if( !bKeep ){
    rc = atomic_end_txn(p, 0, &zErr);
    atomic_block_pop(p);
    if( rc!=SQLITE_OK ){
      atomic_error(ctx, rc, "atomic_exit(): ROLLBACK failed: %s",
                   zErr ? zErr : "out of memory");
    }else{
      sqlite3_result_int(ctx, 0);
    }
    sqlite3_free(zErr);
    return;
  }
  rc = atomic_end_txn(p, 1, &zErr);
  if( (rc&0xff)==SQLITE_BUSY && atomic_writer_active(p) ){
    /* COMMIT refused before doing anything: a statement writes (E4) */
    sqlite3_free(zErr);
    atomic_error_writer(ctx, "atomic_exit");
    return;
  }
  if( rc!=SQLITE_OK ){
    if( !sqlite3_get_autocommit(p->db) ){
      char *zErr2 = 0;
      atomic_end_txn(p, 0, &zErr2);
      sqlite3_free(zErr2);
    }
    atomic_queue_truncate(&p->pending, 0);
    atomic_block_pop(p);
    atomic_error(ctx, rc, "atomic_exit(): COMMIT failed, so the transaction "
        "was rolled back: %s", zErr ? zErr : "out of memory");
    sqlite3_free(zErr);
    return;
  }
  atomic_block_pop(p);
  rc = atomic_queue_run_ready(p, &zErr);
  if( rc!=SQLITE_OK ){
    atomic_error(ctx, rc, "%s", zErr ? zErr : "on_commit callback failed "
                 "after commit: out of memory");
  }else{
    sqlite3_result_int(ctx, 1);
  }
  sqlite3_free(zErr);
}

/*
** atomic_exit([ok])
*/
void atomicExitFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  AtomicConn *p = (AtomicConn*)sqlite3_user_data(ctx);
  AtomicBlock *pBlock;
  int bOk = 1;
  int bKeep;
  int rc;

  if( argc>0 && atomic_arg_bool(ctx, "atomic_exit", "ok", argv[0], &bOk) ){
    return;
  }
  if( p->nBlock>0 && p->eOrphan==ATOMIC_ORPHAN_NONE
   && sqlite3_get_autocommit(p->db)
  ){
    atomic_sync(p);
  }
  if( p->nBlock==0 ){
    if( atomic_writer_active(p) ){
      atomic_error_writer(ctx, "atomic_exit");
    }else{
      atomic_error(ctx, SQLITE_ERROR,
                   "atomic_exit() called outside of an 'atomic' block");
    }
    return;
  }
  pBlock = &p->aBlock[p->nBlock-1];
  bKeep = bOk && !p->bRollback;

  /* The hot path: keep an inner block whose savepoint is there (X2) */
  if( bKeep && p->eOrphan==ATOMIC_ORPHAN_NONE
   && atomic_level_alive(p, pBlock->iLevel, p->nBlock)
  ){
    rc = atomic_exec(p, ATOMIC_STMT_RELEASE);
    if( rc==SQLITE_OK && atomic_level_alive(p, pBlock->iLevel, p->nBlock) ){
      /* A raw savepoint with the same name shadowed it: go on to ours */
      rc = atomic_sp_close(p, pBlock->iLevel, p->nBlock, 0, 1, 0);
    }
    if( rc==SQLITE_OK ){
      atomic_block_pop(p);
      sqlite3_result_int(ctx, 1);
      return;
    }
    if( (rc&0xff)==SQLITE_BUSY && atomic_writer_active(p) ){
      atomic_error_writer(ctx, "atomic_exit");
      return;
    }
    /* X4: RELEASE failed: roll back to the savepoint and raise */
    {
      char *zErr = atomic_mprintf("%s", sqlite3_errmsg(p->db));
      if( !atomic_level_alive(p, pBlock->iLevel, p->nBlock)
       || atomic_sp_close(p, pBlock->iLevel, p->nBlock, 1, 1, 0)!=SQLITE_OK
      ){
        p->bRollback = p->bBroken = 1;
      }
      atomic_block_pop(p);
      atomic_error(ctx, rc, "atomic_exit(): RELEASE failed, so the block "
          "was rolled back: %s", zErr ? zErr : "out of memory");
      sqlite3_free(zErr);
      return;
    }
  }

  /* The owning block keeps its work: SQLite's COMMIT refuses by itself,
  ** before doing anything, while a statement writes */
  if( bKeep && p->eOrphan==ATOMIC_ORPHAN_NONE && p->nBlock==1 && p->bOwner ){
    atomic_exit_owner(ctx, p, 1);
    return;
  }

  if( atomic_writer_active(p) ){
    atomic_error_writer(ctx, "atomic_exit");
    return;
  }

  /* X5: an orphan closes with no SQL */
  if( p->eOrphan ){
    const char *zText = atomic_orphan_text(p);
    atomic_block_pop(p);
    atomic_error(ctx, SQLITE_ERROR, "atomic_exit(): %s", zText);
    return;
  }

  if( p->nBlock==1 && p->bOwner ){
    atomic_exit_owner(ctx, p, bKeep);
    return;
  }

  if( bKeep ){
    if( pBlock->iLevel==ATOMIC_NO_SAVEPOINT ){
      /* X2: a savepoint-less block does nothing */
      atomic_block_pop(p);
      sqlite3_result_int(ctx, 1);
    }else{
      /* X5: raw SQL released or rolled back past the block's savepoint */
      p->bRollback = p->bBroken = 1;
      atomic_block_pop(p);
      atomic_error(ctx, SQLITE_ERROR, "atomic_exit(): the block's savepoint "
          "was released or rolled back outside of the 'atomic' block; the "
          "enclosing block will roll back");
    }
    return;
  }

  /* X3: roll back */
  p->bRollback = p->bBroken = 0;
  if( !atomic_level_alive(p, pBlock->iLevel, p->nBlock)
   || atomic_sp_close(p, pBlock->iLevel, p->nBlock, 1, 1, 0)!=SQLITE_OK
  ){
    /* No savepoint, it vanished, or ROLLBACK TO failed: pass it up */
    p->bRollback = p->bBroken = 1;
  }
  atomic_block_pop(p);
  sqlite3_result_int(ctx, 0);
}

/*
** set_rollback(flag)
*/
void atomicSetRollbackFunc(sqlite3_context *ctx, int argc,
                           sqlite3_value **argv){
  AtomicConn *p = (AtomicConn*)sqlite3_user_data(ctx);
  int bFlag = 0;
  (void)argc;
  atomic_sync(p);
  if( p->nBlock==0 ){
    atomic_error(ctx, SQLITE_ERROR, "set_rollback(): The rollback flag "
                 "doesn't work outside of an 'atomic' block.");
    return;
  }
  if( atomic_arg_bool(ctx, "set_rollback", "flag", argv[0], &bFlag) ) return;
  p->bRollback = (u8)bFlag;
  if( !bFlag ) p->bBroken = 0;
  sqlite3_result_int(ctx, bFlag);
}

/*
** get_rollback()
*/
void atomicGetRollbackFunc(sqlite3_context *ctx, int argc,
                           sqlite3_value **argv){
  AtomicConn *p = (AtomicConn*)sqlite3_user_data(ctx);
  (void)argc; (void)argv;
  atomic_sync(p);
  if( p->nBlock==0 ){
    atomic_error(ctx, SQLITE_ERROR, "get_rollback(): The rollback flag "
                 "doesn't work outside of an 'atomic' block.");
    return;
  }
  sqlite3_result_int(ctx, p->bRollback);
}

/*
** atomic_depth()
*/
void atomicDepthFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  AtomicConn *p = (AtomicConn*)sqlite3_user_data(ctx);
  (void)argc; (void)argv;
  atomic_sync(p);
  sqlite3_result_int(ctx, p->nBlock);
}
