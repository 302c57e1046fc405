# صفحات QR Bridge، العربية.

## كل الصفحات
skip-link = الانتقال إلى المحتوى
footer-secured = محمي بمفاتيح المرور
language = اللغة
not-found-title = الصفحة غير موجودة
not-found-message = لا يوجد شيء في هذا العنوان.
not-found-home = الذهاب إلى صفحة تسجيل الدخول
error-title = حدث خطأ ما

## صفحة تسجيل الدخول على الكمبيوتر
desk-preparing = جارٍ تجهيز رمز تسجيل الدخول…
desk-no-app-title = هذا التطبيق غير موجود
desk-no-app-message = صفحة تسجيل الدخول هذه غير موجودة. تحقق من العنوان.
desk-qr-label = رمز QR للمسح بهاتفك
desk-expires = تنتهي صلاحية الرمز خلال { $time }
desk-title = سجّل الدخول بهاتفك
desk-step-camera = افتح الكاميرا في الهاتف الذي يحمل مفتاح المرور الخاص بك.
desk-step-approve = امسح هذا الرمز ووافق ببصمتك أو وجهك أو رقم PIN.
desk-scanned = تم المسح — انظر إلى هاتفك
desk-match = تم المسح — على هاتفك، اضغط على هذا الرقم:
desk-waiting = في انتظار هاتفك
desk-link = لا يمكنك المسح؟ افتح هذا الرابط على هاتفك:
cancel = إلغاء
desk-signed-in-title = لقد سجّلت الدخول
desk-signed-in-as = تم تسجيل الدخول باسم { $user }
desk-token = رمز الجلسة { $token } — يحتفظ به الخادم ولا يُعرض كاملًا أبدًا.
desk-sign-out = تسجيل الخروج
desk-denied-title = تم رفض تسجيل الدخول
desk-denied-message = تم رفض الطلب على الهاتف.
desk-cancelled-title = تم إلغاء تسجيل الدخول
desk-cancelled-message = لقد ألغيت تسجيل الدخول هذا.
desk-expired-title = انتهت صلاحية هذا الرمز
desk-expired-message = الرموز صالحة لبضع دقائق. احصل على رمز جديد للمحاولة مرة أخرى.
desk-new-code = الحصول على رمز جديد
desk-too-many = رموز جديدة كثيرة جدًا من هنا. انتظر دقيقة ثم حاول مرة أخرى.

## صفحة الموافقة على الهاتف
phone-loading = جارٍ تحميل الطلب…
phone-close = يمكنك إغلاق هذه النافذة.
phone-eyebrow = طلب تسجيل دخول
phone-title = يريد { $app } تسجيل دخولك
phone-asking = من يطلب
phone-device = الجهاز
phone-where = المكان
phone-network = الشبكة
phone-requested = وقت الطلب
phone-warning = لم تبدأ هذا على الكمبيوتر؟ ارفضه.
network-same = نفس شبكة هذا الهاتف
network-different = ليست شبكة هذا الهاتف
elsewhere-title = هذا الطلب يأتي من شبكة أخرى
elsewhere-text = الكمبيوتر الذي يطلب ليس على شبكة هذا الهاتف. ما لم تكن تسجّل الدخول الآن على كمبيوتر أمامك، ارفض الطلب: قد يحاول شخص ما الدخول إلى حسابك.
place = { $city }، { $country }
numbers-legend = اضغط على الرقم الظاهر على الكمبيوتر
numbers-none = لا يظهر رقم على الكمبيوتر؟ ارفض.
getting-ready = جارٍ التجهيز…
approve-create = إنشاء مفتاح مرور والموافقة
approve = الموافقة بمفتاح المرور
decline = رفض
working-create = جارٍ إنشاء مفتاح المرور…
working-use = في انتظار مفتاح المرور…
working-prepare = جارٍ التجهيز…
working-decline = جارٍ الرفض…
working-check = جارٍ التحقق…
working-disown = جارٍ تسجيل خروج ذلك الكمبيوتر…
no-passkey = لم يُستخدم أي مفتاح مرور.
no-passkey-create = إذا لم يكن لهذا الهاتف مفتاح مرور لـ { $app } بعد، فأنشئ واحدًا الآن: يستغرق ذلك لحظة ويسجّل دخولك.
no-passkey-other = استخدم هاتفًا لديه مفتاح مرور لهذا الحساب، أو حاول مرة أخرى.
create-passkey = إنشاء مفتاح مرور
try-again = حاول مرة أخرى
done = تم. يمكنك إغلاق هذه النافذة.
done-desktop = يجري تسجيل دخولك على الكمبيوتر.
allowed = ما سمحت به
allowed-app = التطبيق
allowed-at = وقت الموافقة
approved-with-new = تمت الموافقة بمفتاح المرور الذي أنشأته للتو.
approved-with-dated = تمت الموافقة بمفتاح المرور الذي أنشأته في { $date }.
not-me = لم أكن أنا
disowned-title = تم تسجيل الخروج
disowned-text = أُلغي تسجيل دخول ذلك الكمبيوتر: لم يعد بإمكانه استخدامه. لا يلزمك فعل أي شيء آخر.
declined = تم الرفض. يمكنك إغلاق هذه النافذة.
declined-nobody = لم يسجّل أحد الدخول.
ceremony-unsupported = لا يمكن لهذا المتصفح استخدام مفاتيح المرور هنا.
ceremony-failed = فشل طلب مفتاح المرور. حاول مرة أخرى.
unknown-browser = متصفح غير معروف
browser-on = { $browser } على { $os }
requested-ago =
    { $minutes ->
        [0] الآن
        [one] قبل دقيقة
        [two] قبل دقيقتين
        [few] قبل { $minutes } دقائق
       *[other] قبل { $minutes } دقيقة
    }
retry-ours = لم يكتمل ذلك بسبب خلل لدينا. حاول مرة أخرى.
answer-unreadable = تعذرت قراءة رد مفتاح المرور. حاول مرة أخرى.

## لماذا لا يمكن متابعة الطلب
scan-again = عد إلى الكمبيوتر وامسح رمزًا جديدًا.
not-verified-advice = تعذر التحقق من مفتاح المرور هذا. حاول مرة أخرى.
generic-title = حدث خطأ ما
generic-advice = حاول مرة أخرى بعد قليل.
limited-title = محاولات كثيرة جدًا
limited-advice = انتظر دقيقة ثم حاول مرة أخرى.
invalid-code-title = هذا الرمز غير صالح
expired-title = انتهت صلاحية هذا الرمز
declined-title = تم الرفض
declined-advice = تم رفض تسجيل الدخول على الهاتف.
cancelled-title = أُلغي على الكمبيوتر
cancelled-advice = تم إلغاء تسجيل الدخول. ابدأ من جديد على الكمبيوتر.
already-approved-title = تمت الموافقة مسبقًا
already-approved-advice = تمت الموافقة على تسجيل الدخول هذا مسبقًا.
already-declined-title = تم الرفض مسبقًا
already-declined-advice = تم رفض تسجيل الدخول هذا.
pick-first-title = اختر الرقم أولًا
pick-first-advice = اضغط على الرقم الظاهر على الكمبيوتر، ثم وافق.
cant-go-on-title = لا يمكن متابعة هذا الطلب
not-verified-title = لم يتم التحقق
unknown-passkey-title = مفتاح مرور غير معروف
unknown-passkey-advice = مفتاح المرور هذا غير مسجّل هنا. استخدم مفتاحًا آخر أو أنشئ واحدًا.
no-signup-title = لا يمكنك إنشاء حساب هنا
no-signup-advice = سجّل الدخول بمفتاح مرور لديك بالفعل لهذا التطبيق.
account-exists-title = هذا الحساب موجود بالفعل
account-exists-advice = سجّل الدخول بمفتاح المرور الخاص به، أو اطلب من التطبيق إضافة هذا المفتاح.
other-device-title = هذا الطلب مفتوح على جهاز آخر
other-device-advice = الجهاز الذي فتحه أولًا هو وحده من يمكنه الموافقة عليه أو رفضه.
wrong-pin-title = رقم PIN غير صحيح
wrong-pin-advice = تحقق من رقم PIN على الجهاز الآخر وحاول مرة أخرى.
pin-locked-title = أرقام PIN خاطئة كثيرة جدًا
pin-locked-advice = ابدأ من جديد على الجهاز الآخر للحصول على رقم PIN جديد.
bad-link-title = هذا الرابط غير صالح
other-browser-title = افتح هذا في المتصفح المخصص له
already-creates-title = هذا الطلب ينشئ مفتاح مرور بالفعل
already-creates-advice = ارجع ووافق عليه كما هو.
account-gone-title = هذا الحساب لم يعد موجودًا
account-gone-advice = عد إلى الكمبيوتر وابدأ من جديد.
unreachable-title = لا يمكننا الوصول إلى خدمتنا الآن
unreachable-advice = لا يمكننا الوصول إلى خدمتنا الآن. انتظر لحظة ثم حاول مرة أخرى.
ours-title = حدث خطأ ما من جهتنا
ours-advice = حدث خطأ ما من جهتنا. حاول مرة أخرى.
wrong-number-title = رقم خاطئ: تم الرفض
wrong-number-advice = حفاظًا على أمانك لم يسجّل أحد الدخول. إن كنت أنت، فابدأ من جديد على الكمبيوتر.
