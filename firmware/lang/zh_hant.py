# The handheld's screen texts in zh-Hant: key -> text, "{}" where a value goes.
# firmware/i18n.py loads only the catalog of the configured language;
# every catalog has the same keys (tests/test_handheld_screens.py).

TEXT = {
    "booting": "啟動中",
    "not_provisioned": "設備未配置，請聯繫站點",
    "connecting": "正在連線",
    "offline": "離線",
    "online": "線上",
    "scan_badge": "請掃描工牌",
    "enter_pin": "工號 {} 請輸入密碼",
    "pin_keys": "# 登入  * 刪除",
    "login_wait": "正在登入",
    "login_denied": "登入被拒絕：{}",
    "login_refused": "登入被拒絕",
    "login_needs_network": "登入需要網路",
    "no_answer": "閘道無回應，請重試",
    "fault": "記憶體不足：已清除顯示內容，請重試",
    "route_loaded": "路線 {}：{} 件",
    "route_wait": "正在載入路線",
    "scan_parcel": "請掃描包裹面單二維碼",
    "not_on_route": "{} 不在本路線",
    "name": "姓名",
    "phone": "電話",
    "address": "地址",
    "sort_code": "分揀碼",
    "parcel_keys": "A 查看  B 簽收  * 返回",
    "unproven": "未掃描面單二維碼：僅可按面單破損查看",
    "pick_fields": "選擇要查看的資訊（再按取消）",
    "enter_back": "# 確定  * 返回",
    "pick_reason": "選擇查看原因",
    "damaged_allowance": "此項佔用本班面單破損額度",
    # One per protocol.messages.REASONS id.
    "reason_1": "聯繫不上收件人",
    "reason_2": "地址不清",
    "reason_3": "投遞前致電",
    "reason_4": "門禁碼",
    "reason_5": "收件人要求來電",
    "reason_6": "面單破損",
    "reveal_wait": "正在申請查看",
    "reveal_denied": "查看被拒絕：{}",
    "shown_for": "{} 秒後隱藏",
    "offline_no_token": "離線且無預授權",
    "damaged_needs_network": "面單破損查看需要網路",
    "token_bad": "授權無效或已過期",
    "token_other_parcel": "授權不屬於此包裹",
    "pod_prompt": "簽收：輸入收件人簽收碼",
    "pod_code_bad": "簽收碼須為 4 至 12 位數字",
    "delivered": "{} 已簽收",
    "delivery_refused": "{} 的簽收未被閘道記錄（{}），請重新簽收",
    "sealed": "{} 已封存",
    "queued": "已保存（{} 筆待上傳）",
    "queue_full": "離線儲存已滿，請連網",
    "retry_later": "閘道暫時無法記錄，稍後自動重發",
    "suspended": "帳號或設備已被站點停用，請聯繫站點",
    "lease_over": "長時間未連接站點：權杖已清除，請連網登入",
    "broker_refused": "伺服器拒絕本設備（可能已被停用），請聯繫站點",
    "after_lift": "站點恢復後請掃描工牌",
    "locked": "設備已被站點鎖定，請聯繫站點",
    "wiped": "設備已清除",
    "error": "錯誤：{}",
}

# protocol.messages.DENY_* -> text
DENIALS = {
    1: "包裹不在你的路線上",  # DENY_NOT_ON_ROUTE
    2: "請先掃描面單二維碼",  # DENY_SCAN_FIRST
    3: "包裹已簽收封存",  # DENY_SEALED
    4: "查看額度已用完",  # DENY_BUDGET
    5: "不在你的班次時間內",  # DENY_OFF_SHIFT
    6: "帳號或設備已停用",  # DENY_SUSPENDED
    7: "不允許查看該資訊或原因無效",  # DENY_FIELD
    8: "未登入，請掃描工牌",  # DENY_NOT_LOGGED_IN
    9: "請求過多，請稍後再試",  # DENY_TOO_MANY
    10: "閘道暫時無法使用，請稍後再試",  # DENY_UNAVAILABLE
    11: "面單無效：請掃描面單二維碼",  # DENY_LABEL
    12: "不在包裹的派送時段內",  # DENY_WINDOW
    13: "本班面單破損額度已用完",  # DENY_DAMAGED_USED
    14: "本班離線額度已用完",  # DENY_OFFLINE_USED
    15: "包裹資料已按保存期限銷毀",  # DENY_SHREDDED
    16: "工號或密碼錯誤",  # DENY_BAD_PIN
    17: "密碼錯誤次數過多，已暫時鎖定",  # DENY_LOCKED_OUT
    18: "本設備未啟用，請聯繫站點",  # DENY_DEVICE
    19: "簽收憑證無效",  # DENY_PROOF
}

# protocol.errors codes -> text
ERRORS = {
    1: "訊息格式錯誤",
    2: "訊息過大",
    3: "金鑰不符",
    4: "重複的訊息",
    5: "未知的訊息",
    6: "未登記的設備",
    7: "設備已註銷",
    8: "已過期",
    9: "不允許",
    10: "閘道內部錯誤",
    11: "閘道暫時無法使用",
}

CODE = "代碼 {}"  # a code this firmware has no text for
