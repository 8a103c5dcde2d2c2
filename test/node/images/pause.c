// The pod sandbox's process: holds the pod's namespaces open and does nothing else. As PID 1 of
// a pod that shares its process namespace it also reaps orphans. Exits on SIGINT or SIGTERM,
// which is how the runtime stops a sandbox. (Kubernetes' own pause.c does the same.)
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig) {
  (void)sig;
  _exit(0);
}

static void on_child(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "-v") == 0) {
    puts("dfs-pause 1");
    return 0;
  }
  if (getpid() != 1) fputs("dfs-pause: warning: not PID 1\n", stderr);
  struct sigaction stop = {.sa_handler = on_stop};
  struct sigaction child = {.sa_handler = on_child, .sa_flags = SA_NOCLDSTOP};
  if (sigaction(SIGINT, &stop, NULL) < 0 || sigaction(SIGTERM, &stop, NULL) < 0 ||
      sigaction(SIGCHLD, &child, NULL) < 0) {
    perror("dfs-pause: sigaction");
    return 1;
  }
  for (;;) pause();
}
