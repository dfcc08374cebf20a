/*
** state.c -- the state machine of the atomic extension.  Every change of
** the state goes through a function of this file; the SQL functions
** (block.c, queue.c, savepoint.c, lowlevel.c) and temp.atomic_txn
** (txn.c) decide which transition happens, and only call these.
**
** THE STATE
**
** Everything lives in one AtomicConn per database connection (see
** atomicInt.h), created by the first load of the extension on that
** connection and freed by sqlite3_close().  Connections are independent
** (N1).  The state machine is these fields:
**
**   aBlock[0..nBlock-1]  the open atomic blocks, outermost first.  A block
**                        records the level of its savepoint (below), or
**                        that it made none.
**   bOwner               aBlock[0] began the transaction with BEGIN (E2).
**   bRollback, bBroken   the rollback flag (F1, F2), and whether a failure
**                        set it, which makes the transaction broken (F3).
**   eOrphan              the blocks' transaction ended behind their back
**                        (X5), and how: every open block is an orphan.
**   bDoomed              the extension's own ROLLBACK failed (an
**                        interrupt): the open transaction is one the
**                        extension must still roll back.
**   bJoined, bBlind      temp.atomic_txn is part of the open transaction,
**                        so SQLite reports to it every savepoint, release,
**                        rollback-to, commit and rollback (txn.c); bBlind
**                        if it joined late and does not know yet how many
**                        savepoints were open before it.
**   aLevel[0..nLevel-1]  one entry per SQLite savepoint open now -- the
**                        blocks' own, manual ones, raw SQL ones and the
**                        statement savepoint of each writing statement --
**                        with its owner and its mark: the serial number of
**                        the last callback queued before it opened.
**   aManual[]            open manual savepoints (savepoint()).
**   pending, ready       callbacks queued in the current transaction, and
**                        callbacks of committed work not yet run (C9).
**
** STATES
**
** atomicState() classifies a connection by SQLite's autocommit flag and
** the fields above; atomicStateProblem() (test builds) checks that each
** state's invariant holds, against SQLite's own view where it can.
**
**   state     autocommit blocks invariant
**   --------  ---------- ------ --------------------------------------------
**   IDLE      1          0      not joined, no level, no manual savepoint,
**                               nothing pending, flag clear
**   MANUAL    0          0      the application's transaction; if not
**                               joined: no level, nothing pending, flag clear
**   OWNED     0          >0     bOwner; joined and not blind
**   NESTED    0          >0     !bOwner; joined and not blind
**   ORPHANED  0 or 1     >0     eOrphan set; nothing pending
**   DOOMED    0          0      bDoomed; nothing pending
**
** In every state: the levels' marks never decrease and never pass iSeq;
** pending callbacks have increasing serial numbers; a level owned by a
** block is that block's recorded level; a joined transaction holds a
** write transaction on TEMP; and, while joined and not blind, nLevel is
** SQLite's own count of open savepoints.
**
** TRANSITIONS
**
** The SQL functions run statements and then look at what SQLite reports,
** never at the return code alone: a COMMIT that returns SQLITE_INTERRUPT
** after committing was heard committing (xCommit), and counts as a
** commit.  The rules are SPEC.md section 3.
**
**   from -> to        event; what happens                  function
**   ----------------  -----------------------------------  ---------------
**   IDLE -> OWNED     atomic_enter(): BEGIN, join          atomicBlockPush
**   MANUAL -> NESTED  atomic_enter(): join, SAVEPOINT      atomicBlockPush
**                       unless savepoint=0
**   OWNED, NESTED     atomic_enter(): SAVEPOINT if the     atomicBlockPush
**    -> same            block has one and the flag is
**                       clear
**   OWNED -> IDLE     atomic_exit(keep) of the owner:      atomicTxnEnd,
**                       COMMIT heard; pending -> ready,    atomicBlockPop
**                       then run
**   OWNED -> IDLE     atomic_exit() of the owner:          atomicTxnEnd,
**                       ROLLBACK heard, or COMMIT failed   atomicBlockPop
**                       and ROLLBACK heard; pending
**                       discarded
**   OWNED -> DOOMED   ... and that ROLLBACK failed too    atomicBlockPop,
**                                                          atomicDoom
**   OWNED, NESTED     atomic_exit() of an inner block:     atomicBlockPop,
**    -> same            RELEASE, or ROLLBACK TO +          atomicFlagSet
**                       RELEASE; the flag passes up when
**                       there is nothing to roll back to
**   NESTED -> MANUAL  atomic_exit() of the outermost       atomicBlockPop
**   any -> same       xSavepoint(i)                        atomicLevelOpen
**   any -> same       xRelease(i)                          atomicLevelRelease
**   any -> same       xRollbackTo(i): pending cut back   atomicLevelRollbackTo
**                       to level i's mark
**   OWNED, NESTED     xCommit or xRollback that the        atomicTxnEnd
**    -> ORPHANED        extension did not run (raw SQL,
**                       SQLite's own rollback), or an
**                       entry point finds autocommit on
**   MANUAL -> IDLE    xCommit: pending -> ready;           atomicTxnEnd
**                       xRollback: pending discarded
**   ORPHANED ->       atomic_exit(): no SQL, an error      atomicBlockPop
**    same, or IDLE
**    or MANUAL after
**    the last one
**   DOOMED -> IDLE    the next entry point called from a   atomicTxnEnd
**                       statement of its own: ROLLBACK;
**                       or any end heard or found
**   IDLE -> IDLE      a callback ran and left blocks or a  atomicBlockPop,
**    or DOOMED          transaction: ROLLBACK, pop         atomicTxnEnd,
**                                                          atomicDoom
**
** The one "the transaction ended" path is atomicTxnEnd(): temp.atomic_txn's
** xCommit and xRollback call it, atomicSync() calls it when an entry point
** finds the transaction gone unheard, and a callback's unwind reaches it
** through its ROLLBACK.
**
** Only a top-level statement that does not write may change the
** transaction (E4).  SQLite itself refuses SAVEPOINT and RELEASE while a
** statement writes, so the two hot paths (an inner block with a savepoint)
** rely on that; every other path asks atomicWriterActive() first.
*/
#include "atomicInt.h"

/*
** Classify the connection into one of the ATM_* states above.
*/
ATM_PRIVATE int atomicState(AtomicConn *p){
  if( p->nBlock>0 ){
    if( p->eOrphan ) return ATM_ORPHANED;
    return p->bOwner ? ATM_OWNED : ATM_NESTED;
  }
  if( p->bDoomed ) return ATM_DOOMED;
  return sqlite3_get_autocommit(p->db) ? ATM_IDLE : ATM_MANUAL;
}

/*
** Make room for one more block, before the SQL that opens it runs, so
** that atomicBlockPush() cannot fail.  Returns SQLITE_OK or SQLITE_NOMEM.
*/
ATM_PRIVATE int atomicBlockReserve(AtomicConn *p){
  return atomicGrow((void**)&p->aBlock, &p->nBlockAlloc, p->nBlock+1,
                    sizeof(AtomicBlock));
}

/*
** A block opened, with its savepoint at level iLevel or none
** (ATM_NO_SAVEPOINT).  For the outermost block, bOwner says whether it
** began the transaction; either way the rollback flag is cleared (E2).
*/
ATM_PRIVATE void atomicBlockPush(AtomicConn *p, int iLevel, int bOwner){
  assert( p->nBlock<p->nBlockAlloc );
  assert( p->eOrphan==ATM_END_NONE && !p->bDoomed );
  assert( p->bJoined && !p->bBlind );
  assert( iLevel==ATM_NO_SAVEPOINT
       || atomicLevelAlive(p, iLevel, p->nBlock+1) );
  if( p->nBlock==0 ){
    p->bOwner = (u8)bOwner;
    p->bRollback = p->bBroken = 0;
  }
  p->aBlock[p->nBlock++].iLevel = iLevel;
}

/*
** The innermost block closed.  If its savepoint is still open (its RELEASE
** and ROLLBACK TO both failed), nobody answers for it any more.  Manual
** savepoints that outlive it belong to the enclosing block.  After the
** last orphan the connection works normally again (X5).
*/
ATM_PRIVATE void atomicBlockPop(AtomicConn *p){
  int i;
  assert( p->nBlock>0 );
  p->nBlock--;
  i = p->aBlock[p->nBlock].iLevel;
  if( atomicLevelAlive(p, i, p->nBlock+1) ) p->aLevel[i].iOwner = 0;
  if( p->nBlock==0 ){
    p->bOwner = 0;
    if( p->eOrphan ){
      p->eOrphan = ATM_END_NONE;
      p->bRollback = p->bBroken = 0;
    }
  }
  for(i=p->nManual-1; i>=0 && p->aManual[i].iDepth>p->nBlock; i--){
    p->aManual[i].iDepth = p->nBlock;
  }
}

/*
** Set the rollback flag to bFlag.  Clearing it also clears "broken"; when
** setting it, bBroken is 1 for a failure (F3), 0 for set_rollback(1) on a
** clean transaction, and -1 to leave "broken" as it is.
*/
ATM_PRIVATE void atomicFlagSet(AtomicConn *p, int bFlag, int bBroken){
  p->bRollback = (u8)(bFlag!=0);
  if( !bFlag ){
    p->bBroken = 0;
  }else if( bBroken>=0 ){
    p->bBroken = (u8)bBroken;
  }
}

/*
** temp.atomic_txn joined the open transaction (xBegin), or was created
** inside it.  In the second case SQLite does not say how many savepoints
** were already open, so the levels are unknown (bBlind) until the next
** savepoint opens and reports its level; until then nothing is pending.
*/
ATM_PRIVATE void atomicTxnJoined(AtomicConn *p, int bBlind){
  assert( bBlind || p->pending.pFirst==0 );
  p->bJoined = 1;
  p->bBlind = (u8)bBlind;
  p->nLevel = 0;
  p->bSchema = 0;
}

/*
** The transaction ended: committed, rolled back, or ended unheard (LOST).
** This is the one path for every end (xCommit, xRollback, atomicSync).
** Every savepoint ended with it, and a doomed transaction is gone.  If
** blocks are open and the extension did not end it itself, they become
** orphans (X5) and the rollback flag is cleared (P3); their callbacks are
** discarded.  Otherwise the pending callbacks become ready (commit) or are
** discarded.
*/
ATM_PRIVATE void atomicTxnEnd(AtomicConn *p, int eHow){
  assert( eHow==ATM_END_COMMIT || eHow==ATM_END_ROLLBACK
       || eHow==ATM_END_LOST );
  p->bJoined = 0;
  p->pJoinedTab = 0;
  p->bBlind = 0;
  p->bSchema = 0;
  p->bDoomed = 0;
  p->nLevel = 0;
  p->nManual = 0;
  p->eEnd = (u8)eHow;
  p->nEnd++;
  if( p->nBlock>0 && !p->bExpectEnd ){
    if( p->eOrphan==ATM_END_NONE ){
      p->eOrphan = (u8)eHow;
      p->bRollback = p->bBroken = 0;
    }
    atomicQueueCut(&p->pending, 0);
  }else{
    p->bRollback = p->bBroken = 0;
    if( eHow==ATM_END_COMMIT ){
      atomicQueueMove(&p->ready, &p->pending);
    }else{
      atomicQueueCut(&p->pending, 0);
    }
  }
}

/*
** Savepoint iLevel opened (xSavepoint), made by p->iNewOwner (0 if the
** extension did not announce it).  Entries above it that are still
** recorded are stale and forgotten; missing entries below it opened
** before the table knew the levels, so they are older than every queued
** callback.  Returns SQLITE_OK or SQLITE_NOMEM (SQLite then fails the
** statement that opened the savepoint).
*/
ATM_PRIVATE int atomicLevelOpen(AtomicConn *p, int iLevel){
  i64 iOwner = p->iNewOwner;
  int rc;
  assert( iLevel>=0 );
  p->iNewOwner = 0;
  rc = atomicGrow((void**)&p->aLevel, &p->nLevelAlloc, iLevel+1,
                  sizeof(AtomicLevel));
  if( rc!=SQLITE_OK ) return rc;
  if( iLevel<p->nLevel ) p->nLevel = iLevel;
  while( p->nLevel<iLevel ){
    p->aLevel[p->nLevel].iOwner = 0;
    p->aLevel[p->nLevel].iMark = 0;
    p->nLevel++;
  }
  p->aLevel[iLevel].iOwner = iOwner;
  p->aLevel[iLevel].iMark = p->iSeq;
  p->nLevel = iLevel+1;
  p->bBlind = 0;
  return SQLITE_OK;
}

/*
** Savepoint iLevel and every savepoint inside it were released
** (xRelease).  Their callbacks stay queued: they now belong to the
** enclosing savepoint.
*/
ATM_PRIVATE void atomicLevelRelease(AtomicConn *p, int iLevel){
  /* (SQLite commits instead of releasing the savepoint that began the
  ** transaction, and tells xCommit) */
  assert( iLevel>=0 );
  if( iLevel<p->nLevel ) p->nLevel = iLevel;
}

/*
** The transaction was rolled back to savepoint iLevel, which stays open
** (xRollbackTo); -1 is the savepoint that began the transaction.  The
** callbacks queued since it opened are discarded (C6).
*/
ATM_PRIVATE void atomicLevelRollbackTo(AtomicConn *p, int iLevel){
  p->nRollbackTo++;
  if( iLevel<0 ){
    p->nLevel = 0;
    atomicQueueCut(&p->pending, 0);
  }else if( iLevel<p->nLevel ){
    p->nLevel = iLevel+1;
    atomicQueueCut(&p->pending, p->aLevel[iLevel].iMark);
  }
}

/*
** The extension could not roll back a transaction it must end: its own
** ROLLBACK failed (an interrupt that lasts until the calling statement
** ends).  No block is open any more; the work of the transaction will not
** be committed, so its callbacks are discarded.  The next entry point
** rolls it back (atomicRepair), unless statements changed rows in it
** since now.
*/
ATM_PRIVATE void atomicDoom(AtomicConn *p){
  assert( p->nBlock==0 );
  assert( !sqlite3_get_autocommit(p->db) );
  p->bDoomed = 1;
  p->bRollback = p->bBroken = 0;
  p->nDoomChanges = sqlite3_total_changes(p->db);
  atomicQueueCut(&p->pending, 0);
}

/*
** Make room for one more manual savepoint record, before its SAVEPOINT
** runs.  Returns SQLITE_OK or SQLITE_NOMEM.
*/
ATM_PRIVATE int atomicManualReserve(AtomicConn *p){
  return atomicGrow((void**)&p->aManual, &p->nManualAlloc, p->nManual+1,
                    sizeof(AtomicManual));
}

/*
** Manual savepoint iSerial opened at level iLevel, in the innermost open
** block.
*/
ATM_PRIVATE void atomicManualAdd(AtomicConn *p, i64 iSerial, int iLevel){
  AtomicManual *pM;
  assert( p->nManual<p->nManualAlloc );
  assert( atomicLevelAlive(p, iLevel, -iSerial) );
  pM = &p->aManual[p->nManual++];
  pM->iSerial = iSerial;
  pM->iLevel = iLevel;
  pM->iDepth = p->nBlock;
}

/*
** Drop the records of manual savepoints that no longer exist (raw SQL, a
** rollback, or their own end closed them).  Records are ordered by level
** and levels only end from the top, so the dead ones are at the end.
*/
ATM_PRIVATE void atomicManualPrune(AtomicConn *p){
  while( p->nManual>0 ){
    AtomicManual *pM = &p->aManual[p->nManual-1];
    if( atomicLevelAlive(p, pM->iLevel, -pM->iSerial) ) break;
    p->nManual--;
  }
}

/*
** Queue pCb (which holds its reference for the queue) in the current
** transaction, with the next serial number.
*/
ATM_PRIVATE void atomicPendingPush(AtomicConn *p, AtomicCallback *pCb){
  assert( p->nBlock>0 && p->bJoined && !p->bBlind );
  pCb->iSeq = ++p->iSeq;
  atomicQueueAppend(&p->pending, pCb);
}

/*
** Take the whole ready queue, to run it: returns its first callback (the
** rest follow through pNext), and leaves the queue empty for callbacks
** that the run itself makes ready (C8).
*/
ATM_PRIVATE AtomicCallback *atomicReadyTake(AtomicConn *p){
  AtomicCallback *pList = p->ready.pFirst;
  p->ready.pFirst = p->ready.pLast = 0;
  return pList;
}

#ifdef ATOMIC_TEST
/*
** Stop the process.  The coverage build saves what ran first (gcov writes
** its data at a normal exit only).
*/
#ifdef ATOMIC_COVERAGE
extern void __gcov_dump(void);
# define ATM_STOP() do{ __gcov_dump(); abort(); }while(0)
#else
# define ATM_STOP() abort()
#endif

/*
** Test builds: compare the state with SQLite's and with the invariants in
** the header comment.  Returns NULL if all hold, or a message (from
** sqlite3_mprintf()) naming the first that does not.
*/
#include <stdio.h>
#include <stdlib.h>

/*
** SQLite's own count of open savepoints, learnt by opening one more and
** releasing it while temp.atomic_txn listens: txn.c records the level it
** hears in iProbe instead of changing the state (bProbing).  Returns -1 if
** that cannot be done now (a statement writes, an interrupt, an
** authorizer).  If the probe's savepoint opened but would not go (an
** application's progress handler that fires both after one statement and
** before the next), it is recorded as a savepoint of nobody's, so that the
** state stays true (unless the failed RELEASE made SQLite roll the whole
** transaction back: then there is nothing to record).
*/
static int checkSqliteLevels(AtomicConn *p){
  sqlite3_stmt *pStmt = 0;
  int iLevel;
  if( atomicWriterActive(p) ) return -1;
  p->bProbing = 1;
  p->iProbe = -1;
  p->bProbeReleased = 0;
  if( sqlite3_prepare_v2(p->db, "SAVEPOINT atomic_probe", -1, &pStmt, 0)
      ==SQLITE_OK
  ){
    sqlite3_step(pStmt);
  }
  sqlite3_finalize(pStmt);
  pStmt = 0;
  iLevel = p->iProbe;
  if( iLevel>=0 ){
    if( sqlite3_prepare_v2(p->db, "RELEASE atomic_probe", -1, &pStmt, 0)
        ==SQLITE_OK
    ){
      sqlite3_step(pStmt);
    }
    sqlite3_finalize(pStmt);
  }
  p->bProbing = 0;
  if( iLevel>=0 && !p->bProbeReleased && p->bJoined && iLevel==p->nLevel ){
    p->iNewOwner = 0;
    atomicLevelOpen(p, iLevel);
  }
  return iLevel;
}

ATM_PRIVATE char *atomicStateProblem(AtomicConn *p){
  int bAuto = sqlite3_get_autocommit(p->db);
  int eState = atomicState(p);
  int bTempWrite = sqlite3_txn_state(p->db, "temp")==SQLITE_TXN_WRITE;
  AtomicCallback *pCb, *pPrev;
  i64 iMark = 0;
  int i, j;

  if( p->nBlock<0 || p->nBlock>p->nBlockAlloc ){
    return sqlite3_mprintf("nBlock");
  }
  if( p->nLevel<0 || p->nLevel>p->nLevelAlloc ){
    return sqlite3_mprintf("nLevel");
  }
  if( p->nManual<0 || p->nManual>p->nManualAlloc ){
    return sqlite3_mprintf("nManual");
  }
  if( p->bOwner && p->nBlock==0 ) return sqlite3_mprintf("bOwner, no block");
  if( p->bBroken && !p->bRollback ) return sqlite3_mprintf("broken, no flag");
  if( p->iNewOwner!=0 ) return sqlite3_mprintf("iNewOwner left set");
  if( p->bExpectEnd ) return sqlite3_mprintf("bExpectEnd left set");
  if( p->bJoined && !bTempWrite ){
    return sqlite3_mprintf("joined, but no write transaction on TEMP");
  }
  if( !p->bJoined && (p->nLevel>0 || p->bBlind) ){
    return sqlite3_mprintf("levels recorded while not joined");
  }
  if( p->pending.pFirst && (!p->bJoined || p->bBlind) ){
    return sqlite3_mprintf("callbacks pending while not following");
  }
  switch( eState ){
    case ATM_IDLE:
      /* (nothing is pending: the check above, as IDLE is not joined) */
      if( p->nManual || p->bRollback ){
        return sqlite3_mprintf("IDLE with a manual savepoint or a flag");
      }
      break;
    case ATM_MANUAL:
      if( !p->bJoined && p->bRollback ){
        return sqlite3_mprintf("MANUAL, not joined, flag set");
      }
      break;
    case ATM_OWNED:
    case ATM_NESTED:
      if( bAuto ) return sqlite3_mprintf("blocks open in autocommit mode");
      if( !p->bJoined || p->bBlind ){
        return sqlite3_mprintf("blocks open but the transaction is not "
                               "followed");
      }
      break;
    case ATM_ORPHANED:
      if( p->pending.pFirst ){
        return sqlite3_mprintf("ORPHANED with callbacks pending");
      }
      break;
    case ATM_DOOMED:
      if( bAuto ) return sqlite3_mprintf("DOOMED in autocommit mode");
      if( p->pending.pFirst || p->bRollback ){
        return sqlite3_mprintf("DOOMED with callbacks pending or a flag");
      }
      break;
  }
  if( p->bDoomed && p->nBlock>0 ) return sqlite3_mprintf("doomed blocks");

  /* Levels: marks, owners */
  for(i=0; i<p->nLevel; i++){
    AtomicLevel *pL = &p->aLevel[i];
    if( pL->iMark<iMark || pL->iMark>p->iSeq ){
      return sqlite3_mprintf("level %d: mark %lld out of order", i, pL->iMark);
    }
    iMark = pL->iMark;
    if( pL->iOwner>0 ){
      if( pL->iOwner>p->nBlock || p->aBlock[pL->iOwner-1].iLevel!=i ){
        return sqlite3_mprintf("level %d: owner block %lld does not have it",
                               i, pL->iOwner);
      }
    }else if( pL->iOwner<0 ){
      for(j=0; j<p->nManual; j++){
        if( p->aManual[j].iSerial==-pL->iOwner ) break;
      }
      if( j==p->nManual || p->aManual[j].iLevel!=i ){
        return sqlite3_mprintf("level %d: manual savepoint %lld has no "
                               "record", i, -pL->iOwner);
      }
    }
  }
  for(i=1; i<p->nBlock; i++){
    int a = p->aBlock[i-1].iLevel, b = p->aBlock[i].iLevel;
    if( atomicLevelAlive(p, a, i) && atomicLevelAlive(p, b, i+1) && a>=b ){
      return sqlite3_mprintf("blocks %d and %d: levels out of order", i, i+1);
    }
  }
  for(i=1; i<p->nManual; i++){
    if( p->aManual[i-1].iLevel>=p->aManual[i].iLevel ){
      return sqlite3_mprintf("manual savepoints out of order");
    }
  }

  /* The queues */
  for(pPrev=0, pCb=p->pending.pFirst; pCb; pPrev=pCb, pCb=pCb->pNext){
    if( pCb->pPrev!=pPrev ) return sqlite3_mprintf("pending: bad link");
    if( pPrev && pPrev->iSeq>=pCb->iSeq ){
      return sqlite3_mprintf("pending: serials out of order");
    }
    if( pCb->iSeq>p->iSeq ) return sqlite3_mprintf("pending: serial ahead");
  }
  if( p->pending.pLast!=pPrev ) return sqlite3_mprintf("pending: bad tail");
  for(pPrev=0, pCb=p->ready.pFirst; pCb; pPrev=pCb, pCb=pCb->pNext){
    if( pCb->pPrev!=pPrev ) return sqlite3_mprintf("ready: bad link");
  }
  if( p->ready.pLast!=pPrev ) return sqlite3_mprintf("ready: bad tail");

  /* SQLite's savepoint count */
  if( p->bJoined && !p->bBlind && !bAuto ){
    int nLevel = p->nLevel;
    int n = checkSqliteLevels(p);
    if( n>=0 && n!=nLevel ){
      return sqlite3_mprintf("%d levels recorded, SQLite has %d", nLevel, n);
    }
  }
  return 0;
}

/*
** Test builds: break the state in way eHow, see what atomicStateProblem()
** says, and mend it again unless bKeep.  Returns that message (NULL if the
** check saw nothing wrong), or a message that eHow does not apply to the
** current state.  Each way breaks one invariant that the check tests, so
** a test can show that every check can fail.  The numbers:
**
**    1 nBlock<0            11 the flag set in IDLE   21 two blocks' levels
**    2 nLevel<0            12 ... in MANUAL             swapped
**    3 nManual<0           13 a block in autocommit  22 two manual
**    4 bOwner, no block    14 bBlind                    savepoints swapped
**    5 broken, no flag     15 eOrphan, with pending  23-26 the pending
**    6 iNewOwner left      16 bDoomed                   queue's links,
**    7 bExpectEnd left     17 bDoomed and the flag      order and tail
**    8 bJoined             18 a level's mark ahead   27-28 the ready
**    9 bBlind, not joined  19 a level's block owner     queue's links
**   10 (unused)            20 a level's manual owner 29 one level too many
**
**   30-32 nBlock, nLevel, nManual past their arrays; 33 a level, not
**   joined; 34, 35 blocks, not joined (with and without pending); 36 a
**   DOOMED state with pending callbacks; 37 the first level's mark ahead
**   of the second's; 38 a level given to block 1, which has another; 39 a
**   level given to another manual savepoint
*/
ATM_PRIVATE char *atomicTestBreak(AtomicConn *p, int eHow, int bKeep){
  AtomicConn saved = *p;
  AtomicCallback *pA = p->pending.pFirst;
  AtomicCallback *pB = pA ? pA->pNext : 0;
  AtomicCallback *pR = p->ready.pFirst;
  AtomicCallback *pSaveA = pA ? pA->pPrev : 0;
  AtomicCallback *pSaveR = pR ? pR->pPrev : 0;
  i64 iSeqA = pA ? pA->iSeq : 0;
  i64 iSeqB = pB ? pB->iSeq : 0;
  AtomicLevel aSaveLevel[8];
  AtomicBlock aSaveBlock[4];
  AtomicManual aSaveManual[2];
  int nSaveLevel = p->nLevel<8 ? p->nLevel : 8;
  int nSaveBlock = p->nBlock<4 ? p->nBlock : 4;
  int nSaveManual = p->nManual<2 ? p->nManual : 2;
  int i;
  char *z;
  if( nSaveLevel ){
    memcpy(aSaveLevel, p->aLevel, nSaveLevel*sizeof(AtomicLevel));
  }
  if( nSaveBlock ){
    memcpy(aSaveBlock, p->aBlock, nSaveBlock*sizeof(AtomicBlock));
  }
  if( nSaveManual ){
    memcpy(aSaveManual, p->aManual, nSaveManual*sizeof(AtomicManual));
  }
  switch( eHow ){
    case 1:  p->nBlock = -1;          break;
    case 2:  p->nLevel = -1;          break;
    case 3:  p->nManual = -1;         break;
    case 4:  p->bOwner = 1;           break;
    case 5:  p->bBroken = 1;          break;
    case 6:  p->iNewOwner = 5;        break;
    case 7:  p->bExpectEnd = 1;       break;
    case 8:  p->bJoined = 1;          break;
    case 9:  p->bBlind = 1;           break;
    case 11: case 12: p->bRollback = 1; break;
    case 13:
      if( p->nBlockAlloc<1 ) return sqlite3_mprintf("no block array");
      p->nBlock = 1;
      p->aBlock[0].iLevel = ATM_NO_SAVEPOINT;
      break;
    case 14: p->bBlind = 1;           break;
    case 15: p->eOrphan = ATM_END_COMMIT; break;
    case 16: p->bDoomed = 1;          break;
    case 17: p->bDoomed = 1; p->bRollback = 1; break;
    case 18:
      if( p->nLevel<1 ) return sqlite3_mprintf("no level");
      p->aLevel[p->nLevel-1].iMark = p->iSeq+1;
      break;
    case 19: case 20:
      for(i=0; i<p->nLevel && p->aLevel[i].iOwner<=0; i++){}
      if( i==p->nLevel ) return sqlite3_mprintf("no level of a block");
      p->aLevel[i].iOwner = eHow==19 ? 99 : -99999;
      break;
    case 21: {
      int a, b;
      if( p->nBlock<3 ) return sqlite3_mprintf("fewer than 3 blocks");
      a = p->aBlock[1].iLevel;
      b = p->aBlock[2].iLevel;
      p->aBlock[1].iLevel = b;
      p->aBlock[2].iLevel = a;
      p->aLevel[b].iOwner = 2;
      p->aLevel[a].iOwner = 3;
      break;
    }
    case 22: {
      int a, b;
      if( p->nManual<2 ) return sqlite3_mprintf("fewer than 2 manual");
      a = p->aManual[0].iLevel;
      b = p->aManual[1].iLevel;
      p->aManual[0].iLevel = b;
      p->aManual[1].iLevel = a;
      p->aLevel[b].iOwner = -p->aManual[0].iSerial;
      p->aLevel[a].iOwner = -p->aManual[1].iSerial;
      break;
    }
    case 23: case 26:
      if( pA==0 ) return sqlite3_mprintf("nothing pending");
      if( eHow==23 ) pA->pPrev = pA; else p->pending.pLast = 0;
      break;
    case 24:
      if( pB==0 ) return sqlite3_mprintf("fewer than 2 pending");
      pB->iSeq = pA->iSeq;
      break;
    case 25:
      if( pA==0 ) return sqlite3_mprintf("nothing pending");
      pA->iSeq = p->iSeq+1;
      break;
    case 27: case 28:
      if( pR==0 ) return sqlite3_mprintf("nothing ready");
      if( eHow==27 ) pR->pPrev = pR; else p->ready.pLast = 0;
      break;
    case 29:
      if( p->nLevel<1 || p->nLevel>=p->nLevelAlloc ){
        return sqlite3_mprintf("no room for a level");
      }
      p->aLevel[p->nLevel].iOwner = 0;
      p->aLevel[p->nLevel].iMark = p->aLevel[p->nLevel-1].iMark;
      p->nLevel++;
      break;
    case 30: p->nBlock = p->nBlockAlloc+1;   break;
    case 31: p->nLevel = p->nLevelAlloc+1;   break;
    case 32: p->nManual = p->nManualAlloc+1; break;
    case 33:
      if( p->nLevelAlloc<1 ) return sqlite3_mprintf("no level array");
      p->nLevel = 1;
      p->aLevel[0].iOwner = 0;
      p->aLevel[0].iMark = 0;
      break;
    case 34: case 35: p->bJoined = 0; p->pJoinedTab = 0; break;
    case 36:
      p->nBlock = 0;
      p->bOwner = 0;
      p->bDoomed = 1;
      break;
    case 37:
      if( p->nLevel<2 || p->aLevel[1].iMark>=p->iSeq ){
        return sqlite3_mprintf("no two levels with a callback after them");
      }
      p->aLevel[0].iMark = p->iSeq;
      break;
    case 38:
      if( p->nLevel<1 || p->nBlock<1 || p->aBlock[0].iLevel==0 ){
        return sqlite3_mprintf("no level 0 that block 1 does not have");
      }
      p->aLevel[0].iOwner = 1;
      break;
    case 39:
      if( p->nManual<2 ) return sqlite3_mprintf("fewer than 2 manual");
      p->aLevel[p->aManual[0].iLevel].iOwner = -p->aManual[1].iSerial;
      break;
    default:
      return sqlite3_mprintf("no such way to break the state: %d", eHow);
  }
  z = atomicStateProblem(p);
  if( !bKeep ){
    *p = saved;
    if( pA ){ pA->pPrev = pSaveA; pA->iSeq = iSeqA; }
    if( pB ) pB->iSeq = iSeqB;
    if( pR ) pR->pPrev = pSaveR;
    if( nSaveLevel ){
      memcpy(p->aLevel, aSaveLevel, nSaveLevel*sizeof(AtomicLevel));
    }
    if( nSaveBlock ){
      memcpy(p->aBlock, aSaveBlock, nSaveBlock*sizeof(AtomicBlock));
    }
    if( nSaveManual ){
      memcpy(p->aManual, aSaveManual, nSaveManual*sizeof(AtomicManual));
    }
  }
  return z;
}

/*
** Test builds: check the state after an entry point; a broken invariant
** is a bug, reported on stderr before the process aborts, so that no test
** can pass over it.
*/
ATM_PRIVATE void atomicCheckState(AtomicConn *p, const char *zWhere){
  char *zProblem = atomicStateProblem(p);
  if( zProblem ){
    fprintf(stderr, "atomic: state invariant broken after %s: %s\n"
        "  nBlock=%d bOwner=%d flag=%d/%d eOrphan=%d bDoomed=%d bJoined=%d "
        "bBlind=%d nLevel=%d nManual=%d autocommit=%d\n", zWhere, zProblem,
        p->nBlock, p->bOwner, p->bRollback, p->bBroken, p->eOrphan,
        p->bDoomed, p->bJoined, p->bBlind, p->nLevel, p->nManual,
        sqlite3_get_autocommit(p->db));
    fflush(stderr);
    ATM_STOP();
  }
}
#endif /* ATOMIC_TEST */
