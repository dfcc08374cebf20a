/*
** benchctl.c -- callgrind's collection switch for the peers, which cannot
** issue valgrind client requests themselves.
**
**   benchctl.so   bench_start() / bench_stop() for Python (ctypes)
**   tclctl.so     the Tcl commands bench_start / bench_stop (built from
**                 this file with -DBENCH_TCL; loaded by tclsh)
**
** run.py runs the peers with --instr-atstart=no, so callgrind counts
** only what runs between bench_start and bench_stop, and the interpreter's
** start-up runs uninstrumented (several times faster).  Outside valgrind
** both do nothing.
*/
#include <valgrind/callgrind.h>

#ifndef BENCH_TCL

void bench_start(void){ CALLGRIND_START_INSTRUMENTATION; }
void bench_stop(void){ CALLGRIND_STOP_INSTRUMENTATION; }

#else

#include <tcl.h>

static int startCmd(ClientData cd, Tcl_Interp *interp, int objc,
                    Tcl_Obj *const objv[]){
  (void)cd; (void)interp; (void)objc; (void)objv;
  CALLGRIND_START_INSTRUMENTATION;
  return TCL_OK;
}

static int stopCmd(ClientData cd, Tcl_Interp *interp, int objc,
                   Tcl_Obj *const objv[]){
  (void)cd; (void)interp; (void)objc; (void)objv;
  CALLGRIND_STOP_INSTRUMENTATION;
  return TCL_OK;
}

int Tclctl_Init(Tcl_Interp *interp){
  if( Tcl_InitStubs(interp, "8.6", 0)==0 ) return TCL_ERROR;
  Tcl_CreateObjCommand(interp, "bench_start", startCmd, 0, 0);
  Tcl_CreateObjCommand(interp, "bench_stop", stopCmd, 0, 0);
  return TCL_OK;
}

#endif
