/* trivial_fcgi.c — the reference for the list benchmark: a libfcgi
 * responder that answers every request with the bytes of one file (read
 * once at start) as application/json. Run under spawn-fcgi, which hands it
 * the listening socket as fd 0:  spawn-fcgi -s SOCK -F 2 -- trivial_fcgi FILE
 */
#include <stdio.h>
#include <stdlib.h>

#include <fcgiapp.h>

int
main(int argc, char **argv)
{
	static char body[1 << 20];
	char head[128];
	FCGX_Request req;
	size_t n;
	int hlen;
	FILE *f;

	if (argc != 2 || (f = fopen(argv[1], "rb")) == NULL)
		return 2;
	n = fread(body, 1, sizeof(body), f);
	fclose(f);
	if (FCGX_Init() != 0 || FCGX_InitRequest(&req, 0, 0) != 0)
		return 1;
	hlen = snprintf(head, sizeof(head), "Status: 200 OK\r\nContent-Type: "
	    "application/json\r\nContent-Length: %zu\r\n\r\n", n);
	if (hlen < 0 || (size_t)hlen >= sizeof(head))
		return 1;
	while (FCGX_Accept_r(&req) >= 0) {
		FCGX_PutStr(head, hlen, req.out);
		FCGX_PutStr(body, (int)n, req.out);
		FCGX_Finish_r(&req);
	}
	return 0;
}
