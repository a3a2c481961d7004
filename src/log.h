/* log.h — one line per event, to standard error or a file.
 *
 * Lines are "<RFC 3339 time> polaimg[<pid>] <level>: <message>", written with
 * a single write(2) so lines of concurrent workers never interleave. Log ids,
 * never names, tokens or other patient data.
 */
#ifndef POLAIMG_LOG_H
#define POLAIMG_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Sets the threshold ("debug" … "error") and the file ("" = stderr).
 * Returns 0, or PI_ERR_IO if the file cannot be opened (logging stays on
 * stderr). */
int log_init(const char *level, const char *file);
/* Reopens the log file (SIGUSR1, after logrotate). 0 or PI_ERR_IO. */
int log_reopen(void);
void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
