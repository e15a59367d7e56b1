# Every text the handheld shows, in one table: key -> (zh-Hans, zh-Hant, en).
# The language is chosen in the device config ("lang"). "{}" marks where a
# value goes, filled in order. The gateway sends codes, never text to show:
# a denial (protocol.messages.DENY_*) is rendered from DENIALS_TEXT, whose
# English is protocol.messages.DENIALS itself, and an error code
# (protocol.errors) from ERRORS_TEXT.

from protocol import messages

LANGS = ("zh-Hans", "zh-Hant", "en")
EN = 2

TEXT = {
    "booting": ("启动中", "啟動中", "Starting"),
    "not_provisioned": ("设备未配置，请联系站点", "設備未配置，請聯繫站點", "Not provisioned: ask the depot"),
    "connecting": ("正在连接", "正在連線", "Connecting"),
    "offline": ("离线", "離線", "Offline"),
    "online": ("在线", "線上", "Online"),
    "scan_badge": ("请扫描工牌", "請掃描工牌", "Scan your badge"),
    "enter_pin": ("工号 {} 请输入密码", "工號 {} 請輸入密碼", "Courier {}: enter PIN"),
    "pin_keys": ("# 登录  * 删除", "# 登入  * 刪除", "# log in  * delete"),
    "login_wait": ("正在登录", "正在登入", "Logging in"),
    "login_denied": ("登录被拒绝：{}", "登入被拒絕：{}", "Login denied: {}"),
    "login_refused": ("登录被拒绝", "登入被拒絕", "Login denied"),
    "login_needs_network": ("登录需要网络", "登入需要網路", "Login needs a connection"),
    "no_answer": ("网关无响应，请重试", "閘道無回應，請重試", "No answer from the gateway: try again"),
    "route_loaded": ("路线 {}：{} 件", "路線 {}：{} 件", "Route {}: {} parcels"),
    "route_wait": ("正在载入路线", "正在載入路線", "Loading route"),
    "scan_parcel": ("请扫描包裹面单二维码", "請掃描包裹面單二維碼", "Scan a parcel's label QR"),
    "not_on_route": ("{} 不在本路线", "{} 不在本路線", "{} is not on this route"),
    "name": ("姓名", "姓名", "Name"),
    "phone": ("电话", "電話", "Phone"),
    "address": ("地址", "地址", "Address"),
    "sort_code": ("分拣码", "分揀碼", "Sort code"),
    "parcel_keys": ("A 查看  B 签收  * 返回", "A 查看  B 簽收  * 返回", "A reveal  B deliver  * back"),
    "unproven": ("未扫描面单二维码：仅可按面单破损查看", "未掃描面單二維碼：僅可按面單破損查看",
                 "Label QR not scanned: damaged-label reveal only"),
    "pick_fields": ("选择要查看的信息（再按取消）", "選擇要查看的資訊（再按取消）",
                    "Pick what to see (press again to drop)"),
    "enter_back": ("# 确定  * 返回", "# 確定  * 返回", "# OK  * back"),
    "pick_reason": ("选择查看原因", "選擇查看原因", "Pick a reason"),
    "damaged_allowance": ("此项占用本班面单破损额度", "此項佔用本班面單破損額度",
                          "Uses this shift's damaged-label allowance"),
    # One per protocol.messages.REASONS id, same order.
    "reason_1": ("联系不上收件人", "聯繫不上收件人", "Recipient not reachable"),
    "reason_2": ("地址不清", "地址不清", "Address unclear"),
    "reason_3": ("投递前致电", "投遞前致電", "Call before delivery"),
    "reason_4": ("门禁码", "門禁碼", "Access code"),
    "reason_5": ("收件人要求来电", "收件人要求來電", "Recipient asked for a call"),
    "reason_6": ("面单破损", "面單破損", "Label damaged"),
    "reveal_wait": ("正在申请查看", "正在申請查看", "Requesting reveal"),
    "reveal_denied": ("查看被拒绝：{}", "查看被拒絕：{}", "Reveal denied: {}"),
    "shown_for": ("{} 秒后隐藏", "{} 秒後隱藏", "Hidden again in {} s"),
    "offline_no_token": ("离线且无预授权", "離線且無預授權", "Offline and no pre-issued token"),
    "damaged_needs_network": ("面单破损查看需要网络", "面單破損查看需要網路",
                              "A damaged-label reveal needs a connection"),
    "token_bad": ("授权无效或已过期", "授權無效或已過期", "Token not valid or expired"),
    "token_other_parcel": ("授权不属于此包裹", "授權不屬於此包裹", "Token is for another parcel"),
    "pod_prompt": ("签收：输入收件人签收码", "簽收：輸入收件人簽收碼", "Proof of delivery: receiver's code"),
    "pod_code_bad": ("签收码须为 4 至 12 位数字", "簽收碼須為 4 至 12 位數字",
                     "The code must be 4 to 12 digits"),
    "delivered": ("{} 已签收", "{} 已簽收", "{} delivered"),
    "delivery_refused": ("{} 的签收未被网关记录（{}），请重新签收", "{} 的簽收未被閘道記錄（{}），請重新簽收",
                         "Delivery of {} not recorded by the gateway ({}): deliver it again"),
    "sealed": ("{} 已封存", "{} 已封存", "{} is sealed"),
    "queued": ("已保存（{} 条待上传）", "已保存（{} 筆待上傳）", "Saved ({} to upload)"),
    "queue_full": ("离线存储已满，请联网", "離線儲存已滿，請連網", "Offline store full: reconnect"),
    "retry_later": ("网关暂时无法记录，稍后自动重发", "閘道暫時無法記錄，稍後自動重發",
                    "The gateway cannot record now: sending again shortly"),
    "suspended": ("账号或设备已被站点停用，请联系站点", "帳號或設備已被站點停用，請聯繫站點",
                  "Account or handheld suspended: ask the depot"),
    "broker_refused": ("服务器拒绝本设备（可能已被停用），请联系站点",
                       "伺服器拒絕本設備（可能已被停用），請聯繫站點",
                       "The depot's server refused this handheld (suspended?): ask the depot"),
    "after_lift": ("站点恢复后请扫描工牌", "站點恢復後請掃描工牌", "Scan your badge once the depot lifts it"),
    "locked": ("设备已被站点锁定，请联系站点", "設備已被站點鎖定，請聯繫站點",
               "Device locked by the depot: ask the depot"),
    "wiped": ("设备已清除", "設備已清除", "Device wiped"),
    "error": ("错误：{}", "錯誤：{}", "Error: {}"),
}

# protocol.messages.DENY_* -> (zh-Hans, zh-Hant); English is protocol.messages.DENIALS.
DENIALS_TEXT = {
    messages.DENY_NOT_ON_ROUTE: ("包裹不在你的路线上", "包裹不在你的路線上"),
    messages.DENY_SCAN_FIRST: ("请先扫描面单二维码", "請先掃描面單二維碼"),
    messages.DENY_SEALED: ("包裹已签收封存", "包裹已簽收封存"),
    messages.DENY_BUDGET: ("查看额度已用完", "查看額度已用完"),
    messages.DENY_OFF_SHIFT: ("不在你的班次时间内", "不在你的班次時間內"),
    messages.DENY_SUSPENDED: ("账号或设备已停用", "帳號或設備已停用"),
    messages.DENY_FIELD: ("不允许查看该信息或原因无效", "不允許查看該資訊或原因無效"),
    messages.DENY_NOT_LOGGED_IN: ("未登录，请扫描工牌", "未登入，請掃描工牌"),
    messages.DENY_TOO_MANY: ("请求过多，请稍后再试", "請求過多，請稍後再試"),
    messages.DENY_UNAVAILABLE: ("网关暂时不可用，请稍后再试", "閘道暫時無法使用，請稍後再試"),
    messages.DENY_LABEL: ("面单无效：请扫描面单二维码", "面單無效：請掃描面單二維碼"),
    messages.DENY_WINDOW: ("不在包裹的派送时段内", "不在包裹的派送時段內"),
    messages.DENY_DAMAGED_USED: ("本班面单破损额度已用完", "本班面單破損額度已用完"),
    messages.DENY_OFFLINE_USED: ("本班离线额度已用完", "本班離線額度已用完"),
    messages.DENY_SHREDDED: ("包裹资料已按保存期限销毁", "包裹資料已按保存期限銷毀"),
    messages.DENY_BAD_PIN: ("工号或密码错误", "工號或密碼錯誤"),
    messages.DENY_LOCKED_OUT: ("密码错误次数过多，已暂时锁定", "密碼錯誤次數過多，已暫時鎖定"),
    messages.DENY_DEVICE: ("本设备未启用，请联系站点", "本設備未啟用，請聯繫站點"),
    messages.DENY_PROOF: ("签收凭证无效", "簽收憑證無效"),
}

# protocol.errors codes -> (zh-Hans, zh-Hant, en)
ERRORS_TEXT = {
    1: ("消息格式错误", "訊息格式錯誤", "malformed message"),
    2: ("消息过大", "訊息過大", "message too large"),
    3: ("密钥不符", "金鑰不符", "wrong key"),
    4: ("重复的消息", "重複的訊息", "replayed message"),
    5: ("未知的消息", "未知的訊息", "unknown message"),
    6: ("未登记的设备", "未登記的設備", "unknown device"),
    7: ("设备已注销", "設備已註銷", "device revoked"),
    8: ("已过期", "已過期", "expired"),
    9: ("不允许", "不允許", "not allowed"),
    10: ("网关内部错误", "閘道內部錯誤", "gateway internal error"),
    11: ("网关暂时不可用", "閘道暫時無法使用", "gateway unavailable"),
}
CODE = ("代码 {}", "代碼 {}", "code {}")   # a code this firmware has no text for

FIELD_KEYS = {1: "name", 2: "phone", 3: "address"}


def _index(lang):
    return LANGS.index(lang) if lang in LANGS else EN


def _fill(s, values):
    for v in values:
        s = s.replace("{}", str(v), 1)
    return s


def text(lang, key, *values):
    """The screen text `key` in `lang` (falls back to English), with values filled in."""
    row = TEXT.get(key)
    if row is None:
        return key
    return _fill(row[_index(lang)], values)


def denial(lang, code):
    """What a denial code means, in `lang`."""
    i = _index(lang)
    row = DENIALS_TEXT.get(code)
    if row is None:
        return _fill(CODE[i], (code,))
    if i == EN:
        return messages.DENIALS[code]
    return row[i]


def error(lang, code):
    """What a protocol error code means, in `lang`."""
    i = _index(lang)
    row = ERRORS_TEXT.get(code)
    return _fill(CODE[i], (code,)) if row is None else row[i]
