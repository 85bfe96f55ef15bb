<?php
// PHP's https stream wrapper never reads https_proxy: the proxy goes in the stream context, as a PHP user behind
// keyswap must set it (for https it opens a CONNECT tunnel). The CA comes from php.ini's openssl.cafile (keyswap
// run's PHP_INI_SCAN_DIR).
$proxy = parse_url(getenv('https_proxy'));
$ctx = stream_context_create(['http' => [
    'proxy' => 'tcp://' . $proxy['host'] . ':' . $proxy['port'],
    'method' => 'POST',
    'header' => "Authorization: Bearer " . getenv('OPENAI_API_KEY') . "\r\nContent-Type: application/json\r\n",
    'content' => json_encode(['model' => 'gpt-4o-mini', 'messages' => [['role' => 'user', 'content' => 'hi']]]),
    'ignore_errors' => true,
    'timeout' => 30,
]]);
$body = @file_get_contents('https://api.openai.com/v1/chat/completions', false, $ctx);
if ($body === false) {
    fwrite(STDERR, 'file_get_contents failed: ' . (error_get_last()['message'] ?? '?') . "\n");
    exit(1);
}
preg_match('/^HTTP\/\S+ (\d{3})/', $http_response_header[0] ?? '', $s);
preg_match('/key=([^\s"]*)/', $body, $m);
echo json_encode(['status' => (int) ($s[1] ?? 0), 'echo' => $m[1] ?? null]), "\n";
