# The handheld's screen texts in zh-Hans: key -> text, "{}" where a value goes.
# firmware/i18n.py loads only the catalog of the configured language;
# every catalog has the same keys (tests/test_handheld_screens.py).

TEXT = {
    "booting": "启动中",
    "not_provisioned": "设备未配置，请联系站点",
    "connecting": "正在连接",
    "offline": "离线",
    "online": "在线",
    "scan_badge": "请扫描工牌",
    "enter_pin": "工号 {} 请输入密码",
    "pin_keys": "# 登录  * 删除",
    "login_wait": "正在登录",
    "login_denied": "登录被拒绝：{}",
    "login_refused": "登录被拒绝",
    "login_needs_network": "登录需要网络",
    "no_answer": "网关无响应，请重试",
    "fault": "内存不足：已清除显示内容，请重试",
    "route_loaded": "路线 {}：{} 件",
    "route_wait": "正在载入路线",
    "scan_parcel": "请扫描包裹面单二维码",
    "not_on_route": "{} 不在本路线",
    "name": "姓名",
    "phone": "电话",
    "address": "地址",
    "sort_code": "分拣码",
    "parcel_keys": "A 查看  B 签收  * 返回",
    "unproven": "未扫描面单二维码：仅可按面单破损查看",
    "pick_fields": "选择要查看的信息（再按取消）",
    "enter_back": "# 确定  * 返回",
    "pick_reason": "选择查看原因",
    "damaged_allowance": "此项占用本班面单破损额度",
    # One per protocol.messages.REASONS id.
    "reason_1": "联系不上收件人",
    "reason_2": "地址不清",
    "reason_3": "投递前致电",
    "reason_4": "门禁码",
    "reason_5": "收件人要求来电",
    "reason_6": "面单破损",
    "reveal_wait": "正在申请查看",
    "reveal_denied": "查看被拒绝：{}",
    "shown_for": "{} 秒后隐藏",
    "offline_no_token": "离线且无预授权",
    "damaged_needs_network": "面单破损查看需要网络",
    "token_bad": "授权无效或已过期",
    "token_other_parcel": "授权不属于此包裹",
    "pod_prompt": "签收：输入收件人签收码",
    "pod_code_bad": "签收码须为 4 至 12 位数字",
    "delivered": "{} 已签收",
    "delivery_refused": "{} 的签收未被网关记录（{}），请重新签收",
    "sealed": "{} 已封存",
    "queued": "已保存（{} 条待上传）",
    "queue_full": "离线存储已满，请联网",
    "retry_later": "网关暂时无法记录，稍后自动重发",
    "suspended": "账号或设备已被站点停用，请联系站点",
    "lease_over": "长时间未连接站点：令牌已清除，请联网登录",
    "broker_refused": "服务器拒绝本设备（可能已被停用），请联系站点",
    "after_lift": "站点恢复后请扫描工牌",
    "locked": "设备已被站点锁定，请联系站点",
    "wiped": "设备已清除",
    "error": "错误：{}",
}

# protocol.messages.DENY_* -> text
DENIALS = {
    1: "包裹不在你的路线上",  # DENY_NOT_ON_ROUTE
    2: "请先扫描面单二维码",  # DENY_SCAN_FIRST
    3: "包裹已签收封存",  # DENY_SEALED
    4: "查看额度已用完",  # DENY_BUDGET
    5: "不在你的班次时间内",  # DENY_OFF_SHIFT
    6: "账号或设备已停用",  # DENY_SUSPENDED
    7: "不允许查看该信息或原因无效",  # DENY_FIELD
    8: "未登录，请扫描工牌",  # DENY_NOT_LOGGED_IN
    9: "请求过多，请稍后再试",  # DENY_TOO_MANY
    10: "网关暂时不可用，请稍后再试",  # DENY_UNAVAILABLE
    11: "面单无效：请扫描面单二维码",  # DENY_LABEL
    12: "不在包裹的派送时段内",  # DENY_WINDOW
    13: "本班面单破损额度已用完",  # DENY_DAMAGED_USED
    14: "本班离线额度已用完",  # DENY_OFFLINE_USED
    15: "包裹资料已按保存期限销毁",  # DENY_SHREDDED
    16: "工号或密码错误",  # DENY_BAD_PIN
    17: "密码错误次数过多，已暂时锁定",  # DENY_LOCKED_OUT
    18: "本设备未启用，请联系站点",  # DENY_DEVICE
    19: "签收凭证无效",  # DENY_PROOF
}

# protocol.errors codes -> text
ERRORS = {
    1: "消息格式错误",
    2: "消息过大",
    3: "密钥不符",
    4: "重复的消息",
    5: "未知的消息",
    6: "未登记的设备",
    7: "设备已注销",
    8: "已过期",
    9: "不允许",
    10: "网关内部错误",
    11: "网关暂时不可用",
}

CODE = "代码 {}"  # a code this firmware has no text for
