/* sandbox.h: `mailfs serve` once it runs: no_new_privs and a seccomp allow-list */
#ifndef MAILFS_SANDBOX_H
#define MAILFS_SANDBOX_H

/*
 * Called once the server is set up (store open, listeners bound, mounts made and served, the
 * login workers and FUSE threads running) and before the event loops start. Sets no_new_privs
 * and loads a seccomp filter into every thread of the process that allows only the system
 * calls serving needs (IMAP with TLS, the mounts, the change feed, SIGHUP's certificate
 * reload, starting threads). Anything else kills the whole process (SIGSYS); the kernel logs
 * the call (audit, "type=1326 ... syscall=N"). A new process cannot be made (fork fails with
 * EPERM) nor a program run.
 *
 * MAILFS_SECCOMP in the environment: "off" loads no filter (for debugging), "log" lets every
 * call through but has the kernel log those the filter would have stopped (to find what is
 * missing). A build with AddressSanitizer loads no filter unless MAILFS_SECCOMP asks for one:
 * LeakSanitizer does not work under one. Returns 0, or an exit code after printing why not.
 */
int sandbox_enter(void);

#endif
