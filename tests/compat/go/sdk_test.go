// silenceper/wechat v2 (the Go SDK), unchanged, against a real modgate process started by
// tests/compat/test_silenceper.py. The SDK hard-codes the platform's host, so it is pointed at
// modgate the way a user would point it at a proxy: through its HTTP client's transport.
package compat

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/silenceper/wechat/v2"
	"github.com/silenceper/wechat/v2/cache"
	miniConfig "github.com/silenceper/wechat/v2/miniprogram/config"
	"github.com/silenceper/wechat/v2/miniprogram/security"
	"github.com/silenceper/wechat/v2/util"
)

// toGateway sends every request to the gateway, keeping its path and query.
type toGateway struct{ gateway *url.URL }

func (t toGateway) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.URL.Scheme = t.gateway.Scheme
	req.URL.Host = t.gateway.Host
	req.Host = t.gateway.Host
	return http.DefaultTransport.RoundTrip(req)
}

func securityService(t *testing.T, stable bool) *security.Security {
	t.Helper()
	gateway, err := url.Parse(os.Getenv("MODGATE_API"))
	if err != nil || gateway.Host == "" {
		t.Fatalf("MODGATE_API is not a URL: %q", os.Getenv("MODGATE_API"))
	}
	util.DefaultHTTPClient = &http.Client{Transport: toGateway{gateway}}
	mini := wechat.NewWechat().GetMiniProgram(&miniConfig.Config{
		AppID:       os.Getenv("MODGATE_APPID"),
		AppSecret:   os.Getenv("MODGATE_SECRET"),
		Cache:       cache.NewMemory(),
		UseStableAK: stable,
	})
	return mini.GetSecurity()
}

func TestSecurityMethods(t *testing.T) {
	for _, stable := range []bool{false, true} {
		s := securityService(t, stable)
		res, err := s.MsgCheckV1("今天天气真好")
		if err != nil || res.ErrCode != 0 {
			t.Fatalf("MsgCheckV1: %+v %v", res, err)
		}
		_, err = s.MsgCheckV1("特3456书yuuo莞6543李zxcz蒜7782法fgnv级")
		if err == nil || !strings.Contains(err.Error(), "87014") {
			t.Fatalf("MsgCheckV1 on the platform's risky test string: %v", err)
		}
		v2, err := s.MsgCheck(&security.MsgCheckRequest{
			OpenID: os.Getenv("MODGATE_OPENID"), Scene: security.MsgSceneComment, Content: "你好，世界",
		})
		if err != nil || v2.Result.Suggest != security.CheckSuggestPass || len(v2.TraceID) != 26 {
			t.Fatalf("MsgCheck: %+v %v", v2, err)
		}
		for name, submit := range map[string]func() (string, error){
			"MediaCheckAsyncV1": func() (string, error) {
				return s.MediaCheckAsyncV1(&security.MediaCheckAsyncV1Request{
					MediaURL: "http://media.example/photo.png", MediaType: 2,
				})
			},
			"MediaCheckAsync": func() (string, error) {
				return s.MediaCheckAsync(&security.MediaCheckAsyncRequest{
					MediaURL: "http://media.example/photo.png", MediaType: 2,
					OpenID: os.Getenv("MODGATE_OPENID"), Scene: 1,
				})
			},
		} {
			traceID, err := submit()
			if err != nil || len(strings.Split(traceID, "-")) != 3 {
				t.Fatalf("%s: %q %v", name, traceID, err)
			}
		}
		if err := s.ImageCheckV1(filepath.Join(os.Getenv("MODGATE_IMAGES"), "clean.png")); err != nil {
			t.Fatalf("ImageCheckV1 on a clean image: %v", err)
		}
		err = s.ImageCheckV1(filepath.Join(os.Getenv("MODGATE_IMAGES"), "banked.png"))
		if err == nil || !strings.Contains(err.Error(), "87014") {
			t.Fatalf("ImageCheckV1 on a banked image: %v", err)
		}
	}
}
