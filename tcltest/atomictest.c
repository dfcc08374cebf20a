/*
** atomictest.c -- a Tcl extension the test suite loads for what Tcl's
** sqlite3 package cannot do.  Test-only; not part of the product.
**
**   atomictest_log_start          capture sqlite3_log() from now on, and
**                                 put SQLite's allocator behind one that
**                                 can fail (call it before any connection
**                                 is open)
**   atomictest_sqlite_oom N       the Nth allocation SQLite makes from now
**                                 on fails (0: none); returns how many
**                                 were still to go (0 if it happened), so
**                                 that a test can pause and resume
**   atomictest_log_take           the messages captured since the last
**                                 call, as a list of "CODE MESSAGE"
**   atomictest_memory_used        sqlite3_memory_used()
**   atomictest_open FILE          a raw connection: returns a handle
**   atomictest_load H PATH ?VER?  sqlite3_load_extension(); with VER, call
**                                 the extension's entry point directly with
**                                 an API table whose libversion_number()
**                                 returns VER; returns "RC MESSAGE"
**   atomictest_exec H SQL         run SQL; returns "RC MESSAGE" (RC 0 is OK)
**   atomictest_close H            sqlite3_close(); returns its result code
**   atomictest_close_v2 H         sqlite3_close_v2(); returns its result code
**   atomictest_prepare H SQL      prepare and keep a statement (to test a
**                                 close that must fail); returns a handle
**   atomictest_finalize S         finalize it
**   atomictest_errcode DB         sqlite3_extended_errcode() of the Tcl
**                                 sqlite3 connection DB
**   atomictest_handle DB          the sqlite3* of Tcl connection DB, for
**                                 the commands above
**   atomictest_limit DB length N  sqlite3_limit(SQLITE_LIMIT_LENGTH, N)
**   atomictest_faultvfs           register the VFS "faulty": the default
**                                 VFS, except that it can fail writes
**   atomictest_faultvfs CODE N    the Nth write or sync through "faulty"
**                                 from now fails with result code CODE
**                                 (N=0: none); returns the writes and syncs
**                                 seen since the previous call
*/
#include <tcl.h>
#include <sqlite3.h>
#define SQLITE_CORE 1         /* the API table type, not its redirections */
#include <sqlite3ext.h>
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

static Tcl_Obj *pLogList = 0;
static const sqlite3_api_routines *pRealApi = 0;
static int iFakeVersion = 0;

static void logCallback(void *pArg, int iCode, const char *zMsg){
  (void)pArg;
  if( pLogList==0 ){
    pLogList = Tcl_NewListObj(0, 0);
    Tcl_IncrRefCount(pLogList);
  }
  Tcl_ListObjAppendElement(0, pLogList,
                           Tcl_ObjPrintf("%d %s", iCode, zMsg));
}

/*
** SQLite's allocator, behind one that fails the Nth allocation from the
** moment atomictest_sqlite_oom armed it: every allocation of SQLite's and
** of the extension's goes through it.
*/
static sqlite3_mem_methods realMem;
static int oomCountdown = 0;
static int oomNow(void){
  return oomCountdown>0 && --oomCountdown==0;
}
static void *oomMalloc(int n){
  return oomNow() ? 0 : realMem.xMalloc(n);
}
static void *oomRealloc(void *p, int n){
  return oomNow() ? 0 : realMem.xRealloc(p, n);
}

static int SqliteOomCmd(ClientData cd, Tcl_Interp *interp, int objc,
                        Tcl_Obj *const objv[]){
  int n;
  (void)cd;
  if( objc!=2 ){
    Tcl_WrongNumArgs(interp, 1, objv, "N");
    return TCL_ERROR;
  }
  if( Tcl_GetIntFromObj(interp, objv[1], &n) ) return TCL_ERROR;
  Tcl_SetObjResult(interp, Tcl_NewIntObj(oomCountdown));
  oomCountdown = n;
  return TCL_OK;
}

static int LogStartCmd(ClientData cd, Tcl_Interp *interp, int objc,
                       Tcl_Obj *const objv[]){
  static sqlite3_mem_methods oomMem;
  int rc;
  (void)cd; (void)objc; (void)objv;
  sqlite3_shutdown();
  rc = sqlite3_config(SQLITE_CONFIG_LOG, logCallback, (void*)0);
  if( realMem.xMalloc==0 ){
    sqlite3_config(SQLITE_CONFIG_GETMALLOC, &realMem);
    oomMem = realMem;
    oomMem.xMalloc = oomMalloc;
    oomMem.xRealloc = oomRealloc;
  }
  sqlite3_config(SQLITE_CONFIG_MALLOC, &oomMem);
  sqlite3_initialize();
  Tcl_SetObjResult(interp, Tcl_NewIntObj(rc));
  return TCL_OK;
}

static int LogTakeCmd(ClientData cd, Tcl_Interp *interp, int objc,
                      Tcl_Obj *const objv[]){
  (void)cd; (void)objc; (void)objv;
  if( pLogList ){
    Tcl_SetObjResult(interp, pLogList);
    Tcl_DecrRefCount(pLogList);
    pLogList = 0;
  }
  return TCL_OK;
}

static int MemUsedCmd(ClientData cd, Tcl_Interp *interp, int objc,
                      Tcl_Obj *const objv[]){
  (void)cd; (void)objc; (void)objv;
  Tcl_SetObjResult(interp, Tcl_NewWideIntObj(sqlite3_memory_used()));
  return TCL_OK;
}

static int getPtr(Tcl_Interp *interp, Tcl_Obj *pObj, void **pp){
  if( sscanf(Tcl_GetString(pObj), "%p", pp)!=1 || *pp==0 ){
    Tcl_AppendResult(interp, "bad handle: ", Tcl_GetString(pObj), (char*)0);
    return TCL_ERROR;
  }
  return TCL_OK;
}

static void setPtr(Tcl_Interp *interp, void *p){
  char zBuf[64];
  snprintf(zBuf, sizeof(zBuf), "%p", p);
  Tcl_SetObjResult(interp, Tcl_NewStringObj(zBuf, -1));
}

static void setRcMsg(Tcl_Interp *interp, int rc, const char *zMsg){
  Tcl_Obj *pList = Tcl_NewListObj(0, 0);
  Tcl_ListObjAppendElement(0, pList, Tcl_NewIntObj(rc));
  Tcl_ListObjAppendElement(0, pList, Tcl_NewStringObj(zMsg ? zMsg : "", -1));
  Tcl_SetObjResult(interp, pList);
}

static int OpenCmd(ClientData cd, Tcl_Interp *interp, int objc,
                   Tcl_Obj *const objv[]){
  sqlite3 *db = 0;
  (void)cd;
  if( objc!=2 ){
    Tcl_WrongNumArgs(interp, 1, objv, "FILE");
    return TCL_ERROR;
  }
  if( sqlite3_open(Tcl_GetString(objv[1]), &db)!=SQLITE_OK ){
    Tcl_AppendResult(interp, sqlite3_errmsg(db), (char*)0);
    sqlite3_close(db);
    return TCL_ERROR;
  }
  setPtr(interp, db);
  return TCL_OK;
}

/* Auto-extension that records the real API table */
static int grabApi(sqlite3 *db, char **pzErr, const sqlite3_api_routines *p){
  (void)db; (void)pzErr;
  pRealApi = p;
  return SQLITE_OK;
}

static int fakeLibversionNumber(void){
  return iFakeVersion;
}

static int LoadCmd(ClientData cd, Tcl_Interp *interp, int objc,
                   Tcl_Obj *const objv[]){
  sqlite3 *db;
  char *zErr = 0;
  int rc;
  (void)cd;
  if( objc!=3 && objc!=4 ){
    Tcl_WrongNumArgs(interp, 1, objv, "HANDLE PATH ?VERSION?");
    return TCL_ERROR;
  }
  if( getPtr(interp, objv[1], (void**)&db) ) return TCL_ERROR;
  if( objc==3 ){
    sqlite3_enable_load_extension(db, 1);
    rc = sqlite3_load_extension(db, Tcl_GetString(objv[2]), 0, &zErr);
  }else{
    static sqlite3_api_routines fake;
    int (*xInit)(sqlite3*, char**, const sqlite3_api_routines*);
    void *h;
    if( pRealApi==0 ){
      sqlite3 *db2 = 0;
      sqlite3_auto_extension((void(*)(void))grabApi);
      sqlite3_open(":memory:", &db2);
      sqlite3_close(db2);
      sqlite3_cancel_auto_extension((void(*)(void))grabApi);
    }
    if( Tcl_GetIntFromObj(interp, objv[3], &iFakeVersion) ) return TCL_ERROR;
    h = dlopen(Tcl_GetString(objv[2]), RTLD_NOW);
    xInit = h ? (int(*)(sqlite3*,char**,const sqlite3_api_routines*))
                dlsym(h, "sqlite3_atomic_init") : 0;
    if( xInit==0 || pRealApi==0 ){
      Tcl_AppendResult(interp, "cannot find sqlite3_atomic_init", (char*)0);
      return TCL_ERROR;
    }
    fake = *pRealApi;
    fake.libversion_number = fakeLibversionNumber;
    rc = xInit(db, &zErr, &fake);
  }
  setRcMsg(interp, rc, zErr);
  sqlite3_free(zErr);
  return TCL_OK;
}

static int ExecCmd(ClientData cd, Tcl_Interp *interp, int objc,
                   Tcl_Obj *const objv[]){
  sqlite3 *db;
  char *zErr = 0;
  int rc;
  (void)cd;
  if( objc!=3 ){
    Tcl_WrongNumArgs(interp, 1, objv, "HANDLE SQL");
    return TCL_ERROR;
  }
  if( getPtr(interp, objv[1], (void**)&db) ) return TCL_ERROR;
  rc = sqlite3_exec(db, Tcl_GetString(objv[2]), 0, 0, &zErr);
  setRcMsg(interp, rc, zErr);
  sqlite3_free(zErr);
  return TCL_OK;
}

static int CloseCmd(ClientData cd, Tcl_Interp *interp, int objc,
                    Tcl_Obj *const objv[]){
  sqlite3 *db;
  int bV2 = cd!=0;
  if( objc!=2 ){
    Tcl_WrongNumArgs(interp, 1, objv, "HANDLE");
    return TCL_ERROR;
  }
  if( getPtr(interp, objv[1], (void**)&db) ) return TCL_ERROR;
  Tcl_SetObjResult(interp,
                   Tcl_NewIntObj(bV2 ? sqlite3_close_v2(db) : sqlite3_close(db)));
  return TCL_OK;
}

static int PrepareCmd(ClientData cd, Tcl_Interp *interp, int objc,
                      Tcl_Obj *const objv[]){
  sqlite3 *db;
  sqlite3_stmt *pStmt = 0;
  (void)cd;
  if( objc!=3 ){
    Tcl_WrongNumArgs(interp, 1, objv, "HANDLE SQL");
    return TCL_ERROR;
  }
  if( getPtr(interp, objv[1], (void**)&db) ) return TCL_ERROR;
  if( sqlite3_prepare_v2(db, Tcl_GetString(objv[2]), -1, &pStmt, 0) ){
    Tcl_AppendResult(interp, sqlite3_errmsg(db), (char*)0);
    return TCL_ERROR;
  }
  setPtr(interp, pStmt);
  return TCL_OK;
}

static int FinalizeCmd(ClientData cd, Tcl_Interp *interp, int objc,
                       Tcl_Obj *const objv[]){
  sqlite3_stmt *pStmt;
  (void)cd;
  if( objc!=2 ){
    Tcl_WrongNumArgs(interp, 1, objv, "STMT");
    return TCL_ERROR;
  }
  if( getPtr(interp, objv[1], (void**)&pStmt) ) return TCL_ERROR;
  Tcl_SetObjResult(interp, Tcl_NewIntObj(sqlite3_finalize(pStmt)));
  return TCL_OK;
}

/*
** The sqlite3* behind a Tcl sqlite3 connection command: Tcl's SqliteDb
** structure begins with it.
*/
static int getTclDb(Tcl_Interp *interp, Tcl_Obj *pName, sqlite3 **pDb){
  Tcl_CmdInfo info;
  if( !Tcl_GetCommandInfo(interp, Tcl_GetString(pName), &info) ){
    Tcl_AppendResult(interp, "no such connection: ", Tcl_GetString(pName),
                     (char*)0);
    return TCL_ERROR;
  }
  *pDb = *(sqlite3**)info.objClientData;
  return TCL_OK;
}

/*
** atomictest_errcode DB and atomictest_handle DB: one command for both,
** told apart by its client data.
*/
static int DbCmd(ClientData cd, Tcl_Interp *interp, int objc,
                 Tcl_Obj *const objv[]){
  sqlite3 *db;
  if( objc!=2 ){
    Tcl_WrongNumArgs(interp, 1, objv, "DB");
    return TCL_ERROR;
  }
  if( getTclDb(interp, objv[1], &db) ) return TCL_ERROR;
  if( cd ){
    setPtr(interp, db);
  }else{
    Tcl_SetObjResult(interp, Tcl_NewIntObj(sqlite3_extended_errcode(db)));
  }
  return TCL_OK;
}

static int LimitCmd(ClientData cd, Tcl_Interp *interp, int objc,
                    Tcl_Obj *const objv[]){
  sqlite3 *db;
  int n;
  (void)cd;
  if( objc!=4 || strcmp(Tcl_GetString(objv[2]), "length")!=0 ){
    Tcl_WrongNumArgs(interp, 1, objv, "DB length N");
    return TCL_ERROR;
  }
  if( getTclDb(interp, objv[1], &db) ) return TCL_ERROR;
  if( Tcl_GetIntFromObj(interp, objv[3], &n) ) return TCL_ERROR;
  Tcl_SetObjResult(interp,
                   Tcl_NewIntObj(sqlite3_limit(db, SQLITE_LIMIT_LENGTH, n)));
  return TCL_OK;
}

/*
** The VFS "faulty": every method goes to the default VFS, but the Nth
** xWrite or xSync from the moment atomictest_faultvfs armed it fails with
** the chosen code, to reproduce a full disk or an I/O error at COMMIT.
*/
typedef struct FaultyFile FaultyFile;
struct FaultyFile {
  sqlite3_file base;        /* Base class: pMethods is faultyIo */
  sqlite3_file *pReal;      /* The default VFS's file, right after us */
};
static sqlite3_vfs faultyVfs;
static sqlite3_vfs *pDefaultVfs = 0;
static int faultCode = 0;   /* Result code of the fault */
static int faultCountdown = 0;  /* Fail when this reaches 0 from 1 */
static int faultSeen = 0;   /* Writes and syncs since the last call */

static int faultNow(void){
  faultSeen++;
  return faultCountdown>0 && --faultCountdown==0;
}
#define REAL(f) (((FaultyFile*)(f))->pReal)
static int fClose(sqlite3_file *f){ return REAL(f)->pMethods->xClose(REAL(f)); }
static int fRead(sqlite3_file *f, void *p, int n, sqlite3_int64 o){
  return REAL(f)->pMethods->xRead(REAL(f), p, n, o);
}
static int fWrite(sqlite3_file *f, const void *p, int n, sqlite3_int64 o){
  if( faultNow() ) return faultCode;
  return REAL(f)->pMethods->xWrite(REAL(f), p, n, o);
}
static int fTruncate(sqlite3_file *f, sqlite3_int64 n){
  return REAL(f)->pMethods->xTruncate(REAL(f), n);
}
static int fSync(sqlite3_file *f, int flags){
  if( faultNow() ) return faultCode==SQLITE_FULL ? SQLITE_FULL : SQLITE_IOERR_FSYNC;
  return REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int fFileSize(sqlite3_file *f, sqlite3_int64 *p){
  return REAL(f)->pMethods->xFileSize(REAL(f), p);
}
static int fLock(sqlite3_file *f, int e){ return REAL(f)->pMethods->xLock(REAL(f), e); }
static int fUnlock(sqlite3_file *f, int e){ return REAL(f)->pMethods->xUnlock(REAL(f), e); }
static int fCheckReservedLock(sqlite3_file *f, int *p){
  return REAL(f)->pMethods->xCheckReservedLock(REAL(f), p);
}
static int fFileControl(sqlite3_file *f, int op, void *p){
  return REAL(f)->pMethods->xFileControl(REAL(f), op, p);
}
static int fSectorSize(sqlite3_file *f){
  return REAL(f)->pMethods->xSectorSize(REAL(f));
}
static int fDeviceCharacteristics(sqlite3_file *f){
  return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static const sqlite3_io_methods faultyIo = {
  1, fClose, fRead, fWrite, fTruncate, fSync, fFileSize, fLock, fUnlock,
  fCheckReservedLock, fFileControl, fSectorSize, fDeviceCharacteristics,
  0, 0, 0, 0, 0, 0
};
static int fOpen(sqlite3_vfs *pVfs, const char *zName, sqlite3_file *f,
                 int flags, int *pOutFlags){
  FaultyFile *p = (FaultyFile*)f;
  int rc;
  (void)pVfs;
  p->pReal = (sqlite3_file*)&p[1];
  rc = pDefaultVfs->xOpen(pDefaultVfs, zName, p->pReal, flags, pOutFlags);
  p->base.pMethods = p->pReal->pMethods ? &faultyIo : 0;
  return rc;
}
static int fDelete(sqlite3_vfs *v, const char *z, int s){
  (void)v; return pDefaultVfs->xDelete(pDefaultVfs, z, s);
}
static int fAccess(sqlite3_vfs *v, const char *z, int f, int *r){
  (void)v; return pDefaultVfs->xAccess(pDefaultVfs, z, f, r);
}
static int fFullPathname(sqlite3_vfs *v, const char *z, int n, char *o){
  (void)v; return pDefaultVfs->xFullPathname(pDefaultVfs, z, n, o);
}
static int fRandomness(sqlite3_vfs *v, int n, char *o){
  (void)v; return pDefaultVfs->xRandomness(pDefaultVfs, n, o);
}
static int fSleep(sqlite3_vfs *v, int n){
  (void)v; return pDefaultVfs->xSleep(pDefaultVfs, n);
}
static int fCurrentTime(sqlite3_vfs *v, double *p){
  (void)v; return pDefaultVfs->xCurrentTime(pDefaultVfs, p);
}
static int fGetLastError(sqlite3_vfs *v, int n, char *z){
  (void)v; return pDefaultVfs->xGetLastError(pDefaultVfs, n, z);
}
/* Loading an extension goes through the connection's VFS */
static void *fDlOpen(sqlite3_vfs *v, const char *z){
  (void)v; return pDefaultVfs->xDlOpen(pDefaultVfs, z);
}
static void fDlError(sqlite3_vfs *v, int n, char *z){
  (void)v; pDefaultVfs->xDlError(pDefaultVfs, n, z);
}
static void (*fDlSym(sqlite3_vfs *v, void *h, const char *z))(void){
  (void)v; return pDefaultVfs->xDlSym(pDefaultVfs, h, z);
}
static void fDlClose(sqlite3_vfs *v, void *h){
  (void)v; pDefaultVfs->xDlClose(pDefaultVfs, h);
}

static int FaultVfsCmd(ClientData cd, Tcl_Interp *interp, int objc,
                       Tcl_Obj *const objv[]){
  (void)cd;
  if( objc==1 ){
    if( pDefaultVfs==0 ){
      pDefaultVfs = sqlite3_vfs_find(0);
      memset(&faultyVfs, 0, sizeof(faultyVfs));
      faultyVfs.iVersion = 1;
      faultyVfs.szOsFile = (int)sizeof(FaultyFile) + pDefaultVfs->szOsFile;
      faultyVfs.mxPathname = pDefaultVfs->mxPathname;
      faultyVfs.zName = "faulty";
      faultyVfs.xOpen = fOpen;
      faultyVfs.xDelete = fDelete;
      faultyVfs.xAccess = fAccess;
      faultyVfs.xDlOpen = fDlOpen;
      faultyVfs.xDlError = fDlError;
      faultyVfs.xDlSym = fDlSym;
      faultyVfs.xDlClose = fDlClose;
      faultyVfs.xFullPathname = fFullPathname;
      faultyVfs.xRandomness = fRandomness;
      faultyVfs.xSleep = fSleep;
      faultyVfs.xCurrentTime = fCurrentTime;
      faultyVfs.xGetLastError = fGetLastError;
      sqlite3_vfs_register(&faultyVfs, 0);
    }
    return TCL_OK;
  }
  if( objc!=3 ){
    Tcl_WrongNumArgs(interp, 1, objv, "?CODE N?");
    return TCL_ERROR;
  }
  if( Tcl_GetIntFromObj(interp, objv[1], &faultCode)
   || Tcl_GetIntFromObj(interp, objv[2], &faultCountdown)
  ){
    return TCL_ERROR;
  }
  Tcl_SetObjResult(interp, Tcl_NewIntObj(faultSeen));
  faultSeen = 0;
  return TCL_OK;
}

int Atomictest_Init(Tcl_Interp *interp){
  Tcl_CreateObjCommand(interp, "atomictest_faultvfs", FaultVfsCmd, 0, 0);
  Tcl_CreateObjCommand(interp, "atomictest_sqlite_oom", SqliteOomCmd, 0, 0);
  Tcl_CreateObjCommand(interp, "atomictest_limit", LimitCmd, 0, 0);
  Tcl_CreateObjCommand(interp, "atomictest_errcode", DbCmd, 0, 0);
  Tcl_CreateObjCommand(interp, "atomictest_handle", DbCmd, (void*)1, 0);
  Tcl_CreateObjCommand(interp, "atomictest_log_start", LogStartCmd, 0, 0);
  Tcl_CreateObjCommand(interp, "atomictest_log_take", LogTakeCmd, 0, 0);
  Tcl_CreateObjCommand(interp, "atomictest_memory_used", MemUsedCmd, 0, 0);
  Tcl_CreateObjCommand(interp, "atomictest_open", OpenCmd, 0, 0);
  Tcl_CreateObjCommand(interp, "atomictest_load", LoadCmd, 0, 0);
  Tcl_CreateObjCommand(interp, "atomictest_exec", ExecCmd, 0, 0);
  Tcl_CreateObjCommand(interp, "atomictest_close", CloseCmd, 0, 0);
  Tcl_CreateObjCommand(interp, "atomictest_close_v2", CloseCmd, (void*)1, 0);
  Tcl_CreateObjCommand(interp, "atomictest_prepare", PrepareCmd, 0, 0);
  Tcl_CreateObjCommand(interp, "atomictest_finalize", FinalizeCmd, 0, 0);
  return Tcl_PkgProvide(interp, "atomictest", "1.0");
}
