// usage: reneg host port certA keyA certB keyB  (stdin: bytes to send after renegotiation; prints response)
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
int main(int argc, char **argv) {
  if (argc < 7) return 2;
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {0}; a.sin_family = AF_INET; a.sin_port = htons(atoi(argv[2])); inet_pton(AF_INET, argv[1], &a.sin_addr);
  if (connect(fd, (struct sockaddr*)&a, sizeof a)) { perror("connect"); return 3; }
  SSL *ssl = SSL_new(ctx);
  if (SSL_use_certificate_chain_file(ssl, argv[3]) != 1 || SSL_use_PrivateKey_file(ssl, argv[4], SSL_FILETYPE_PEM) != 1) { ERR_print_errors_fp(stderr); return 4; }
  SSL_set_fd(ssl, fd);
  if (SSL_connect(ssl) != 1) { ERR_print_errors_fp(stderr); return 5; }
  if (SSL_use_certificate_chain_file(ssl, argv[5]) != 1 || SSL_use_PrivateKey_file(ssl, argv[6], SSL_FILETYPE_PEM) != 1) { ERR_print_errors_fp(stderr); return 6; }
  if (SSL_renegotiate(ssl) != 1) { ERR_print_errors_fp(stderr); return 7; }
  if (SSL_do_handshake(ssl) != 1) { ERR_print_errors_fp(stderr); return 8; }
  char buf[65536]; size_t n = fread(buf, 1, sizeof buf, stdin);
  if (SSL_write(ssl, buf, (int)n) <= 0) { ERR_print_errors_fp(stderr); return 9; }
  for (;;) { int r = SSL_read(ssl, buf, sizeof buf); if (r <= 0) break; fwrite(buf, 1, r, stdout); fflush(stdout); }
  return 0;
}
