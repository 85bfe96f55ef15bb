// net/http as a Go program uses it: http.DefaultClient takes the proxy from HTTPS_PROXY and, on Linux, the CA
// from SSL_CERT_FILE.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
)

func main() {
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`
	req, err := http.NewRequest("POST", "https://api.openai.com/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Authorization", "Bearer "+os.Getenv("OPENAI_API_KEY"))
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer res.Body.Close()
	text, _ := io.ReadAll(res.Body)
	var echo *string
	if m := regexp.MustCompile(`key=([^\s"]*)`).FindSubmatch(text); m != nil {
		s := string(m[1])
		echo = &s
	}
	out, _ := json.Marshal(map[string]any{"status": res.StatusCode, "echo": echo})
	fmt.Println(string(out))
}
