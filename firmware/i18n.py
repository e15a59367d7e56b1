# Every text the handheld shows, in one table: key -> (zh-Hans, zh-Hant, en).
# The language is chosen in the device config ("lang"). "{}" marks where a
# value goes, filled in order.

LANGS = ("zh-Hans", "zh-Hant", "en")

TEXT = {
    "booting": ("启动中", "啟動中", "Starting"),
    "not_provisioned": ("设备未配置，请联系站点", "設備未配置，請聯繫站點", "Not provisioned: ask the depot"),
    "connecting": ("正在连接", "正在連線", "Connecting"),
    "offline": ("离线", "離線", "Offline"),
    "online": ("在线", "線上", "Online"),
    "scan_badge": ("请扫描工牌", "請掃描工牌", "Scan your badge"),
    "enter_pin": ("工号 {} 请输入密码", "工號 {} 請輸入密碼", "Courier {}: enter PIN"),
    "login_wait": ("正在登录", "正在登入", "Logging in"),
    "login_denied": ("登录被拒绝：{}", "登入被拒絕：{}", "Login denied: {}"),
    "login_needs_network": ("登录需要网络", "登入需要網路", "Login needs a connection"),
    "route_loaded": ("路线 {}：{} 件", "路線 {}：{} 件", "Route {}: {} parcels"),
    "route_wait": ("正在载入路线", "正在載入路線", "Loading route"),
    "scan_parcel": ("请扫描包裹", "請掃描包裹", "Scan a parcel"),
    "not_on_route": ("{} 不在本路线", "{} 不在本路線", "{} is not on this route"),
    "name": ("姓名", "姓名", "Name"),
    "phone": ("电话", "電話", "Phone"),
    "address": ("地址", "地址", "Address"),
    "sort_code": ("分拣码", "分揀碼", "Sort code"),
    "pick_reason": ("选择查看原因", "選擇查看原因", "Pick a reason"),
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
    "pod_prompt": ("签收：输入签收码或签名", "簽收：輸入簽收碼或簽名",
                   "Proof of delivery: code or signature"),
    "delivered": ("{} 已签收", "{} 已簽收", "{} delivered"),
    "sealed": ("{} 已封存", "{} 已封存", "{} is sealed"),
    "queued": ("已离线保存（{} 条待上传）", "已離線保存（{} 筆待上傳）", "Saved offline ({} to upload)"),
    "queue_full": ("离线存储已满，请联网", "離線儲存已滿，請連網", "Offline store full: reconnect"),
    "locked": ("设备已锁定", "設備已鎖定", "Device locked"),
    "wiped": ("设备已清除", "設備已清除", "Device wiped"),
    "error": ("错误：{}", "錯誤：{}", "Error: {}"),
}

FIELD_KEYS = {1: "name", 2: "phone", 3: "address"}


def text(lang, key, *values):
    """The screen text `key` in `lang` (falls back to English), with values filled in."""
    row = TEXT.get(key)
    if row is None:
        return key
    i = LANGS.index(lang) if lang in LANGS else 2
    s = row[i]
    for v in values:
        s = s.replace("{}", str(v), 1)
    return s
