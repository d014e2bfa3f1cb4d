package compat;

import java.io.File;
import java.util.LinkedHashMap;
import java.util.Map;

import cn.binarywang.wx.miniapp.api.WxMaService;
import cn.binarywang.wx.miniapp.api.impl.WxMaServiceImpl;
import cn.binarywang.wx.miniapp.bean.WxMaJscode2SessionResult;
import cn.binarywang.wx.miniapp.bean.WxMaSubscribeMessage;
import cn.binarywang.wx.miniapp.bean.safety.request.WxMaUserSafetyRiskRankRequest;
import cn.binarywang.wx.miniapp.bean.security.WxMaMediaSecCheckCheckRequest;
import cn.binarywang.wx.miniapp.bean.security.WxMaMsgSecCheckCheckRequest;
import cn.binarywang.wx.miniapp.config.impl.WxMaDefaultConfigImpl;
import com.google.gson.Gson;
import me.chanjar.weixin.common.error.WxErrorException;

/**
 * Calls WxJava's own methods against the gateway at the API host given, and prints one JSON
 * object: each call's name with what it returned, or the errcode it failed with. The
 * assertions are the test's (tests/compat/test_wxjava.py).
 *
 * <p>Arguments: apiHostUrl, appid, secret, openid, media URL, image file, mode ("direct" or
 * "passthrough"), stable ("stable" to use stable_token).
 */
public final class Check {
  interface Call {
    Object run() throws Exception;
  }

  private static final Map<String, Object> OUT = new LinkedHashMap<>();

  private static void call(String name, Call call) {
    try {
      OUT.put(name, call.run());
    } catch (WxErrorException e) {
      Map<String, Object> error = new LinkedHashMap<>();
      error.put("errcode", e.getError().getErrorCode());
      error.put("errmsg", e.getError().getErrorMsg());
      OUT.put(name, error);
    } catch (Exception e) {
      OUT.put(name, Map.of("exception", String.valueOf(e)));
    }
  }

  public static void main(String[] args) {
    String api = args[0];
    String appid = args[1];
    String secret = args[2];
    String openid = args[3];
    String mediaUrl = args[4];
    File image = new File(args[5]);
    boolean passthrough = "passthrough".equals(args[6]);
    boolean stable = args.length > 7 && "stable".equals(args[7]);

    WxMaDefaultConfigImpl config = new WxMaDefaultConfigImpl();
    config.setAppid(appid);
    config.setSecret(secret);
    config.setApiHostUrl(api);
    config.useStableAccessToken(stable);
    WxMaService service = new WxMaServiceImpl();
    service.setWxMaConfig(config);

    call("getAccessToken", () -> service.getAccessToken(true));
    if (passthrough) {
      // A forwarded API of the platform's, then a login through the gateway.
      call("sendSubscribeMsg", () -> {
        service.getMsgService().sendSubscribeMsg(WxMaSubscribeMessage.builder()
            .toUser(openid).templateId("tmpl-1").data(java.util.List.of()).build());
        return "sent";
      });
      call("getSessionInfo", () -> {
        WxMaJscode2SessionResult s = service.getUserService().getSessionInfo("code-" + openid);
        return s.getOpenid();
      });
    }
    var security = service.getSecurityService();
    call("checkMessageV1", () -> security.checkMessage("今天天气真好"));
    call("checkMessageV1Risky", () -> security.checkMessage("特3456书yuuo莞6543李zxcz蒜7782法fgnv级"));
    call("checkMessageV2", () -> {
      var r = security.checkMessage(WxMaMsgSecCheckCheckRequest.builder()
          .content("你好，世界").version("2").scene(2).openid(openid).build());
      return Map.of("suggest", r.getResult().getSuggest(), "label", r.getResult().getLabel(),
          "trace_id", r.getTraceId(), "detail", r.getDetail().size());
    });
    call("checkImageV1", () -> security.checkImage(image));
    call("mediaCheckAsyncV1", () -> security.mediaCheckAsync(mediaUrl, 2).getTraceId());
    call("mediaCheckAsyncV2", () -> security.mediaCheckAsync(WxMaMediaSecCheckCheckRequest.builder()
        .mediaUrl(mediaUrl).mediaType(2).version(2).scene(1).openid(openid).build()).getTraceId());
    call("getUserRiskRank", () -> {
      var r = security.getUserRiskRank(WxMaUserSafetyRiskRankRequest.builder()
          .appid(appid).openid(openid).scene(1).clientIp("203.0.113.9").build());
      return Map.of("risk_rank", r.getRiskRank(), "unoin_id", r.getUnoinId());
    });
    System.out.println(new Gson().toJson(OUT));
  }
}
