require 'json'
require 'net/http'

uri = URI('https://api.openai.com/v1/chat/completions')
req = Net::HTTP::Post.new(uri, 'Authorization' => "Bearer #{ENV.fetch('OPENAI_API_KEY')}", 'Content-Type' => 'application/json')
req.body = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }.to_json
# Net::HTTP takes the proxy from https_proxy and the CA from SSL_CERT_FILE (OpenSSL's default store).
res = Net::HTTP.start(uri.host, uri.port, use_ssl: true) { |http| http.request(req) }
puts({ status: res.code.to_i, echo: res.body[/key=([^\s"]*)/, 1] }.to_json)
