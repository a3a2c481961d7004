/* main.c — the polaimg command: serve, migrate, sweep, restore, verify,
 * presign, check-config, config-keys, --version.
 *
 * `polaimg serve` opens the FastCGI socket (and, with ingest_listen, the
 * ingest socket of the upload pool) and hands them to the master, which
 * forks the workers of each pool. When fd 0 is already a listening socket (the
 * process was started by spawn-fcgi or Apache's mod_fcgid), the web server is
 * the supervisor and this process runs a single worker on fd 0 instead.
 * Before it forks, serve makes the checks a worker makes at start
 * (preflight.c) and exits 1 naming every problem; check-config makes the
 * same checks and reports them all, as text or one JSON object (report.c).
 * With pid_file set, the master's pid file is locked before the sockets
 * are opened and written after (pidfile.c).
 * The other verbs are operator tools that run once and exit; sweep and
 * restore are in sweep.c, presign in presign.c, verify in verify.c,
 * token in token.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "config.h"
#include "db.h"
#include "log.h"
#include "master.h"
#include "pidfile.h"
#include "preflight.h"
#include "presign.h"
#include "token.h"
#include "report.h"
#include "storage.h"
#include "sweep.h"
#include "verify.h"
#include "worker.h"

extern char **environ;

static const char *config_path;       /* -c, or NULL for the default */
static struct config *current;         /* the master's configuration */
static int pid_fd = -1;                /* the locked pid_file, or -1 */
static char pid_path[4096];            /* its path, as locked at start */

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: polaimg [-c FILE] VERB [ARGS]\n"
	    "  serve              run the FastCGI master and its workers\n"
	    "  migrate [--dir D]  apply the SQL migrations\n"
	    "  sweep [--json]     purge deleted images past retention, expired\n"
	    "                     pending uploads, orphan objects and temp files\n"
	    "  restore ID         undo the deletion of an image\n"
	    "  verify [--quiet] [--json]\n"
	    "                     re-hash every stored object against the database\n"
	    "  check-config [--json]\n"
	    "                     validate the configuration and everything a worker\n"
	    "                     loads at start; print the effective configuration\n"
	    "  presign --method GET|PUT --key K [--content-type T] [--expires S]\n"
	    "          [--date YYYYMMDDTHHMMSSZ]   print an S3 presigned URL\n"
	    "  token --user ID [--days N] [--key FILE]\n"
	    "                     print a long-lived bearer token for a service\n"
	    "                     account (revoke: deactivate the user)\n"
	    "  config-keys        list every configuration key\n"
	    "  --version          print the version\n"
	    "The configuration is read from -c FILE, $POLAIMG_CONFIG or "
	    CFG_DEFAULT_PATH ";\nevery key can be overridden by POLAIMG_<KEY>.\n");
}

static void free_config(struct config *cfg);

/* EXIF and DICOM times without an offset are the clinic's local time
 * (imaging.c and dicom.cc read them with mktime()); every other time
 * polaimg formats is UTC (gmtime_r), so the zone changes nothing else.
 * Makes cfg's local_timezone the process's TZ (empty: the host's). 0, or
 * PI_ERR_INTERNAL with a message on standard error. */
static int
use_timezone(const struct config *cfg)
{
	if (cfg->local_timezone[0] != '\0' &&
	    setenv("TZ", cfg->local_timezone, 1) != 0) {
		fprintf(stderr, "polaimg: local_timezone: %s\n",
		    strerror(errno));
		return PI_ERR_INTERNAL;
	}
	tzset();
	return 0;
}

static struct config *
load_config(void)
{
	struct config *cfg = calloc(1, sizeof(*cfg));
	char err[512];

	if (cfg == NULL) {
		fprintf(stderr, "polaimg: out of memory\n");
		return NULL;
	}
	if (cfg_load(cfg, config_path, environ, err, sizeof(err)) != 0) {
		fprintf(stderr, "polaimg: configuration: %s\n", err);
		free(cfg);
		return NULL;
	}
	if (use_timezone(cfg) != 0) {
		free_config(cfg);
		return NULL;
	}
	return cfg;
}

static void
free_config(struct config *cfg)
{
	if (cfg != NULL) {
		cfg_free(cfg);
		free(cfg);
	}
}

/* 1 if fd is a listening socket (spawn-fcgi / mod_fcgid hand-over). */
static int
is_listening_socket(int fd)
{
	int v = 0;
	socklen_t len = sizeof(v);

	return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) == 0 && v;
}

/* Opens the listen socket named by spec ("unix:/path" or "host:port"). */
static int
open_listen(const char *spec)
{
	int fd = -1;

	if (strncmp(spec, "unix:", 5) == 0) {
		struct sockaddr_un sun;
		const char *path = spec + 5;
		struct stat sb;

		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		if (strlen(path) >= sizeof(sun.sun_path)) {
			log_error("listen: socket path too long");
			return -1;
		}
		memcpy(sun.sun_path, path, strlen(path) + 1);
		/* A stale socket from a previous run is replaced; anything
		 * else at that path is not ours to remove. */
		if (lstat(path, &sb) == 0) {
			if (!S_ISSOCK(sb.st_mode)) {
				log_error("listen: %s exists and is not a socket", path);
				return -1;
			}
			(void)unlink(path);
		}
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 ||
		    chmod(path, 0660) != 0 || listen(fd, 1024) != 0) {
			log_error("listen: %s: %s", path, strerror(errno));
			if (fd >= 0)
				close(fd);
			return -1;
		}
		return fd;
	} else {
		char host[256];
		const char *colon = strrchr(spec, ':');
		struct addrinfo hints, *res = NULL;
		int one = 1, gai;

		if (colon == NULL || (size_t)(colon - spec) >= sizeof(host)) {
			log_error("listen: expected host:port");
			return -1;
		}
		memcpy(host, spec, (size_t)(colon - spec));
		host[colon - spec] = '\0';
		memset(&hints, 0, sizeof(hints));
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
		gai = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &res);
		if (gai != 0) {
			log_error("listen: %s: %s", spec, gai_strerror(gai));
			return -1;
		}
		fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 ||
		    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
		    bind(fd, res->ai_addr, res->ai_addrlen) != 0 ||
		    listen(fd, 1024) != 0) {
			log_error("listen: %s: %s", spec, strerror(errno));
			if (fd >= 0)
				close(fd);
			fd = -1;
		}
		freeaddrinfo(res);
		return fd;
	}
}

#define SD_LISTEN_FDS_START 3
#define INGEST_FDNAME "ingest"

/*
 * Systemd socket activation (sd_listen_fds(3)'s protocol, read without
 * libsystemd): LISTEN_PID is us, LISTEN_FDS is 1 or 2, fds 3 and 4 listen.
 * The socket whose LISTEN_FDNAMES entry is "ingest" (polaimg-ingest.socket,
 * FileDescriptorName=ingest) is the ingest pool's, the other the read
 * pool's. Sets *read_fd and *ingest_fd (-1 when not passed); returns 1 if
 * the read socket came from systemd. The variables are removed so that
 * nothing started later takes them as its own.
 */
static int
socket_activated(int *read_fd, int *ingest_fd)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	const char *names = getenv("LISTEN_FDNAMES");
	char *end;
	long p, n;
	int ok;

	*read_fd = *ingest_fd = -1;
	if (pid == NULL || fds == NULL)
		return 0;
	errno = 0;
	p = strtol(pid, &end, 10);
	ok = errno == 0 && *end == '\0' && p == (long)getpid();
	n = strtol(fds, &end, 10);
	ok = ok && errno == 0 && *end == '\0' && (n == 1 || n == 2);
	for (long i = 0; ok && i < n; i++) {
		int fd = SD_LISTEN_FDS_START + (int)i;
		const char *name = names;
		size_t len;

		/* The i-th ':'-separated name (absent names are ""). */
		for (long j = 0; name != NULL && j < i; j++) {
			name = strchr(name, ':');
			if (name != NULL)
				name++;
		}
		len = name != NULL ? strcspn(name, ":") : 0;
		if (!is_listening_socket(fd) ||
		    fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
			ok = 0;
		else if (len == strlen(INGEST_FDNAME) &&
		    strncmp(name, INGEST_FDNAME, len) == 0 && *ingest_fd < 0)
			*ingest_fd = fd;
		else if (*read_fd < 0)
			*read_fd = fd;
		else
			ok = 0;
	}
	ok = ok && *read_fd >= 0;
	(void)unsetenv("LISTEN_PID");
	(void)unsetenv("LISTEN_FDS");
	(void)unsetenv("LISTEN_FDNAMES");
	if (!ok) {
		if (n > 0)
			log_warn("ignoring LISTEN_FDS=%s: polaimg takes one "
			    "socket, or two with one named \"ingest\"", fds);
		*read_fd = *ingest_fd = -1;
	}
	return ok;
}

/* The settings of the pools from cfg; the listen fds are the caller's. */
static void
pool_settings(const struct config *cfg, struct master_settings *s)
{
	s->pool[MASTER_POOL_READ].workers = (int)cfg->workers;
	s->pool[MASTER_POOL_READ].request_timeout = (int)cfg->request_timeout;
	s->pool[MASTER_POOL_INGEST].workers = (int)cfg->ingest_workers;
	s->pool[MASTER_POOL_INGEST].request_timeout =
	    (int)cfg->ingest_request_timeout;
}

static int
hook_worker_main(void *ud, int pool, int listen_fd,
    struct scoreboard_slot *slot)
{
	(void)ud;
	/* A worker must not outlive its master (a SIGKILLed master would
	 * leave workers serving on the socket with nobody supervising). */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() == 1)
		return 1;
	/* The pid file's lock is the master's alone. */
	pidfile_close(pid_fd);
	pid_fd = -1;
	return worker_run(current, pool, listen_fd, slot);
}

/*
 * The checks of a worker's start (preflight.c) on cfg, before any worker
 * is forked with it; every failure is logged. 0, or PI_ERR_INVALID.
 */
static int
serve_preflight(const struct config *cfg, const char *when)
{
	char out[4096];
	const char *p = out;

	if (preflight_run(cfg, 1, out, sizeof(out)) == 0)
		return 0;
	while (*p != '\0') {
		size_t n = strcspn(p, "\n");

		if (n > 0)
			log_error("%s: %.*s", when, (int)n, p);
		p += n;
		if (*p == '\n')
			p++;
	}
	return PI_ERR_INVALID;
}

/* serve's configuration: loaded, its combination checked and the checks
 * of a worker's start made, every failure on standard error; NULL if any. */
static struct config *
serve_load(void)
{
	struct config *cfg = calloc(1, sizeof(*cfg));
	char err[512], problems[4096];
	const char *p = problems;
	int bad = 0;

	if (cfg == NULL) {
		fprintf(stderr, "polaimg: out of memory\n");
		return NULL;
	}
	if (cfg_load_all(cfg, config_path, environ, err, sizeof(err), problems,
	    sizeof(problems)) != 0) {
		fprintf(stderr, "polaimg: configuration: %s\n", err);
		free(cfg);
		return NULL;
	}
	while (*p != '\0') {
		size_t n = strcspn(p, "\n");

		fprintf(stderr, "polaimg: configuration: %.*s\n", (int)n, p);
		bad = 1;
		p += n;
		if (*p == '\n')
			p++;
	}
	if (use_timezone(cfg) != 0 ||
	    serve_preflight(cfg, "cannot start") != 0)
		bad = 1;
	if (bad) {
		free_config(cfg);
		return NULL;
	}
	return cfg;
}

static int
hook_reload(void *ud, struct master_settings *s)
{
	struct config *fresh = load_config();

	(void)ud;
	if (fresh == NULL)
		return PI_ERR_INVALID;
	/* A configuration no worker could start with keeps the running
	 * generation (the master logs that it does). */
	if (serve_preflight(fresh, "reload") != 0) {
		free_config(fresh);
		return PI_ERR_INVALID;
	}
	if (strcmp(fresh->listen, current->listen) != 0)
		log_warn("reload: a new listen address needs a restart; keeping %s",
		    current->listen);
	if (strcmp(fresh->ingest_listen, current->ingest_listen) != 0)
		log_warn("reload: a new ingest_listen needs a restart; keeping "
		    "\"%s\"", current->ingest_listen);
	if (strcmp(fresh->pid_file, current->pid_file) != 0)
		log_warn("reload: a new pid_file needs a restart; keeping "
		    "\"%s\"", current->pid_file);
	free_config(current);
	current = fresh;
	(void)log_init(current->log_level, current->log_file);
	pool_settings(current, s);
	log_info("configuration reloaded");
	return 0;
}

static void
hook_reopen_logs(void *ud)
{
	(void)ud;
	(void)log_reopen();
}

/* A reaped worker's temp files: an upload it was writing when it crashed
 * or was killed (request_timeout, the OOM killer) is nobody's now. */
static void
hook_worker_gone(void *ud, pid_t pid)
{
	int n;

	(void)ud;
	n = storage_tmp_reap(current->storage_dir, (long)pid);
	if (n > 0)
		log_info("removed %d temp file%s of worker %ld", n,
		    n == 1 ? "" : "s", (long)pid);
}

/* At start: this host's temp files whose writer is gone (a worker or a
 * whole host killed mid-upload); other hosts' are theirs (storage.h). */
static void
serve_reap_temps(const struct config *cfg)
{
	int n = storage_tmp_reap(cfg->storage_dir, 0);

	if (n > 0)
		log_info("removed %d temp file%s left by processes of this host "
		    "that are gone", n, n == 1 ? "" : "s");
	else if (n < 0)
		log_warn("cannot read %s/.tmp to remove stale temp files",
		    cfg->storage_dir);
}

/* Closes a listening socket of cmd_serve (fd < 0: nothing): one systemd
 * passed is made blocking again and left in place; one polaimg opened on
 * unix:path is removed. */
static void
serve_close(int fd, int activated, const char *spec)
{
	if (fd < 0)
		return;
	if (activated) {
		int flags = fcntl(fd, F_GETFL);

		if (flags >= 0)
			(void)fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
	}
	close(fd);
	if (!activated && strncmp(spec, "unix:", 5) == 0)
		(void)unlink(spec + 5);
}

/*
 * pid_file, step one, before the sockets are opened: lock the file, so that
 * a second master on it stops here, before it could take over the first
 * one's unix socket. Returns 0 (also when pid_file is empty) or a negative
 * pi_err, having said why on standard error.
 */
static int
serve_pidfile_lock(const struct config *cfg)
{
	pid_t holder;
	int rc;

	if (cfg->pid_file[0] == '\0')
		return 0;
	if (strlen(cfg->pid_file) >= sizeof(pid_path)) {
		log_error("pid_file: path too long");
		return PI_ERR_INVALID;
	}
	memcpy(pid_path, cfg->pid_file, strlen(cfg->pid_file) + 1);
	rc = pidfile_lock(cfg->pid_file, &pid_fd, &holder);
	if (rc == PI_ERR_CONFLICT)
		log_error("pid_file %s: held by a running master (pid %ld); "
		    "stop it first", cfg->pid_file, (long)holder);
	else if (rc != 0)
		log_error("pid_file %s: %s", cfg->pid_file, strerror(errno));
	return rc;
}

/* pid_file, step two, once the sockets are open: write the pid. 0 or a
 * negative pi_err (said on standard error). */
static int
serve_pidfile_write(void)
{
	if (pid_fd < 0)
		return 0;
	if (pidfile_write(pid_fd) != 0) {
		log_error("pid_file %s: %s", pid_path, strerror(errno));
		return PI_ERR_IO;
	}
	return 0;
}

static int
cmd_serve(void)
{
	struct master_settings s;
	struct master_hooks hooks = { NULL, hook_worker_main, hook_reload,
		hook_reopen_logs, hook_worker_gone };
	int fd = -1, ifd = -1, rc, activated, ingest_activated;

	/* What would stop every worker at start stops serve now, with all
	 * the reasons (on standard error, the journal's, before log_file
	 * takes over), instead of a master respawning workers for ever. */
	current = serve_load();
	if (current == NULL)
		return 1;
	(void)log_init(current->log_level, current->log_file);
	serve_reap_temps(current);
	if (is_listening_socket(0)) {
		/* spawn-fcgi or mod_fcgid: one worker, the web server
		 * supervises. It serves every route (no memory limit, no
		 * per-user upload count: those need the master). */
		struct scoreboard_slot slot;

		memset(&slot, 0, sizeof(slot));
		log_info("polaimg %s: single worker on the inherited socket",
		    PACKAGE_VERSION);
		rc = worker_run(current, MASTER_POOL_READ, 0, &slot);
		free_config(current);
		return rc;
	}
	if (current->listen[0] == '\0') {
		fprintf(stderr, "polaimg: listen is empty and fd 0 is not a "
		    "listening socket\n");
		free_config(current);
		return 1;
	}
	/* The ingest pool: on the socket systemd passed as "ingest" (its
	 * unit decides, whatever ingest_listen says, so that an old
	 * polaimg.conf still serves the web server's ingest routes), else on
	 * ingest_listen; empty and none passed: one pool for everything. */
	memset(&s, 0, sizeof(s));
	if (serve_pidfile_lock(current) != 0) {
		free_config(current);
		return 1;
	}
	activated = socket_activated(&fd, &ifd);
	ingest_activated = ifd >= 0;
	if (!activated)
		fd = open_listen(current->listen);
	if (fd >= 0 && ifd < 0 && current->ingest_listen[0] != '\0')
		ifd = open_listen(current->ingest_listen);
	if (fd < 0 || (ifd < 0 && current->ingest_listen[0] != '\0')) {
		rc = 1;
		goto out;
	}
	if (serve_pidfile_write() != 0) {
		rc = 1;
		goto out;
	}
	s.npools = ifd >= 0 ? 2 : 1;
	s.pool[MASTER_POOL_READ].listen_fd = fd;
	s.pool[MASTER_POOL_INGEST].listen_fd = ifd;
	pool_settings(current, &s);
	log_info("polaimg %s: listening on %s with %d workers", PACKAGE_VERSION,
	    activated ? "the socket passed by systemd" : current->listen,
	    s.pool[MASTER_POOL_READ].workers);
	if (ifd >= 0)
		log_info("polaimg %s: uploads on %s with %d ingest workers",
		    PACKAGE_VERSION, ingest_activated ? "the ingest socket "
		    "passed by systemd" : current->ingest_listen,
		    s.pool[MASTER_POOL_INGEST].workers);
	rc = master_run(&s, &hooks);
out:
	/* The workers made the sockets non-blocking (worker.c); a socket
	 * systemd keeps goes back as it came and stays systemd's: it keeps
	 * accepting (and queueing) connections while polaimg restarts,
	 * e.g. on upgrade. */
	serve_close(fd, activated, current->listen);
	serve_close(ifd, ingest_activated, current->ingest_listen);
	pidfile_remove(pid_path, pid_fd);
	pid_fd = -1;
	free_config(current);
	return rc;
}

static int
cmd_migrate(int argc, char **argv)
{
	const char *dir = NULL;
	struct config *cfg;
	struct db *db;
	struct stat sb;
	int rc;

	if (argc >= 3 && strcmp(argv[1], "--dir") == 0)
		dir = argv[2];
	if (dir == NULL)
		dir = stat(POLAIMG_DATADIR "/sql", &sb) == 0 ? POLAIMG_DATADIR "/sql" : "sql";
	cfg = load_config();
	if (cfg == NULL)
		return 1;
	db = db_new(cfg->database_url);
	rc = db != NULL && db_migrate(db, dir) == 0 ? 0 : 1;
	db_free(db);
	free_config(cfg);
	return rc;
}

/* --- sweep, restore (sweep.c) ------------------------------------------ */

static int
cmd_sweep(int argc, char **argv)
{
	struct config *cfg = load_config();
	int rc;

	if (cfg == NULL)
		return 1;
	(void)log_init(cfg->log_level, "");
	rc = sweep_main(cfg, argc, argv);
	free_config(cfg);
	return rc;
}

static int
cmd_restore(const char *id)
{
	struct config *cfg = load_config();
	int rc;

	if (cfg == NULL)
		return 1;
	rc = sweep_restore(cfg, id);
	free_config(cfg);
	return rc;
}

/* Each '\n'-separated line of lines as one error of r. */
static void
report_lines(struct report *r, const char *lines)
{
	while (lines != NULL && *lines != '\0') {
		size_t n = strcspn(lines, "\n");

		if (n > 0)
			report_error(r, "%.*s", (int)n, lines);
		lines += n;
		if (*lines == '\n')
			lines++;
	}
}

/*
 * check-config [--json]: every check `serve` and its workers make — the
 * values and their combination (config.c), then the ImageMagick policy, the
 * JWT key and the storage (preflight.c) — all reported, not the first.
 * Prints the effective configuration (text) and exits 0 when all pass.
 */
static int
cmd_check_config(int argc, char **argv)
{
	struct config cfg;
	struct report r;
	char err[512], problems[4096], pre[4096];
	int json = 0, ok;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else {
			fprintf(stderr, "usage: polaimg check-config [--json]\n");
			return 2;
		}
	}
	if (report_init(&r, "configuration", json) != 0) {
		fprintf(stderr, "polaimg: out of memory\n");
		return 1;
	}
	if (cfg_load_all(&cfg, config_path, environ, err, sizeof(err),
	    problems, sizeof(problems)) != 0) {
		report_error(&r, "%s", err);
		report_finish(&r, 0);
		return 1;
	}
	report_lines(&r, problems);
	/* The checks of a worker need the values they read to be sound. */
	if (preflight_run(&cfg, 0, pre, sizeof(pre)) != 0)
		report_lines(&r, pre);
	ok = r.nerrors == 0;
	if (!json && ok)
		cfg_print(&cfg, stdout);
	if (ok && !json && strcmp(cfg.storage_provider, "supabase") == 0 &&
	    cfg.supabase_jwt_secret[0] == '\0')
		printf("# upload URLs: signed by the Storage API; they live as "
		    "long as it says (a self-hosted server's default is 60 s), "
		    "and expiresIn says so\n");
	report_finish(&r, ok);
	cfg_free(&cfg);
	return ok ? 0 : 1;
}

int
main(int argc, char **argv)
{
	int opt;
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};

	while ((opt = getopt_long(argc, argv, "+c:Vh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_path = optarg;
			break;
		case 'V':
			printf("polaimg %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[0], "serve") == 0)
		return cmd_serve();
	if (strcmp(argv[0], "migrate") == 0)
		return cmd_migrate(argc, argv);
	if (strcmp(argv[0], "sweep") == 0)
		return cmd_sweep(argc, argv);
	if (strcmp(argv[0], "restore") == 0 && argc == 2)
		return cmd_restore(argv[1]);
	if (strcmp(argv[0], "verify") == 0) {
		struct config *cfg = load_config();
		int rc;

		if (cfg == NULL)
			return 1;
		(void)log_init(cfg->log_level, "");
		rc = verify_main(cfg, argc, argv);
		free_config(cfg);
		return rc;
	}
	if (strcmp(argv[0], "check-config") == 0)
		return cmd_check_config(argc, argv);
	if (strcmp(argv[0], "presign") == 0) {
		struct config *cfg = load_config();
		int rc;

		if (cfg == NULL)
			return 1;
		rc = presign_main(cfg, argc, argv);
		free_config(cfg);
		return rc;
	}
	if (strcmp(argv[0], "token") == 0) {
		struct config *cfg = load_config();
		int rc;

		if (cfg == NULL)
			return 1;
		rc = token_main(cfg, argc, argv);
		free_config(cfg);
		return rc;
	}
	if (strcmp(argv[0], "config-keys") == 0) {
		cfg_describe(stdout);
		return 0;
	}
	usage(stderr);
	return 2;
}
