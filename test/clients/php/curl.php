<?php
// libcurl takes the proxy from https_proxy; the CA comes from php.ini's curl.cainfo.
$ch = curl_init('https://api.openai.com/v1/chat/completions');
curl_setopt_array($ch, [
    CURLOPT_POST => true,
    CURLOPT_HTTPHEADER => ['Authorization: Bearer ' . getenv('OPENAI_API_KEY'), 'Content-Type: application/json'],
    CURLOPT_POSTFIELDS => json_encode(['model' => 'gpt-4o-mini', 'messages' => [['role' => 'user', 'content' => 'hi']]]),
    CURLOPT_RETURNTRANSFER => true,
    CURLOPT_TIMEOUT => 30,
]);
$body = curl_exec($ch);
if ($body === false) {
    fwrite(STDERR, 'curl error: ' . curl_error($ch) . "\n");
    exit(1);
}
preg_match('/key=([^\s"]*)/', $body, $m);
echo json_encode(['status' => curl_getinfo($ch, CURLINFO_RESPONSE_CODE), 'echo' => $m[1] ?? null]), "\n";
