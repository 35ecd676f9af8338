<#
.SYNOPSIS
Installs and configures OutSystems 11 Platform Server on one VM or scale-set instance.

.DESCRIPTION
Run by the Custom Script Extension on every OutSystems VM and on every instance of the
production front-end scale set, including instances added later by scaling. The script text
travels in the VM's userData, so nothing is downloaded from a repository; secrets
(-DatabaseAdminPassword, -PrivateKey) arrive only through the extension's protected settings.

Uses the public Outsystems.SetupTools module from the PowerShell Gallery:
prerequisites, Platform Server (with LifeTime on the lifetime role; RabbitMQ everywhere except on
front-ends), server configuration (database server, platform/session/logging catalogs and their
users, controller address, private key, cache invalidation), apply, Service Center and system
components (+ LifeTime) on controller/standalone/lifetime, Windows firewall rules, tuning.

Idempotent: every step first looks at the machine (installed version, configuration fingerprint,
firewall rules) and skips what is already done, so a re-run or a rerun after a reboot ends in the
same state. The transcript never contains a secret; it is copied to the platform's file share
when the share is reachable.

.PARAMETER Role
controller (farm Deployment Controller), frontend (farm front-end), standalone (both roles on one
server) or lifetime (LifeTime environment).

.PARAMETER PlatformVersion
Platform Server version, e.g. 11.32.0 (the latest build of it) or a full 11.32.0.43856.

.PARAMETER LifetimeVersion
LifeTime version installed on the lifetime role, e.g. 11.25.2; ignored by the other roles.

.PARAMETER DatabaseServer
Fully qualified name of the environment's Azure SQL logical server.

.PARAMETER ControllerAddress
Private IP of the environment's Deployment Controller (the server's own IP for non-farm roles).

.PARAMETER PrivateKey
The environment's OutSystems private key (base64 of 16 bytes), identical on the controller and
every front-end. Secret.

.PARAMETER StorageAccount
Storage account of the platform; its file share receives the setup transcript.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)]
    [ValidateSet('controller', 'frontend', 'standalone', 'lifetime')]
    [string]$Role,

    [Parameter(Mandatory = $true)]
    [ValidatePattern('^11\.\d+\.\d+(\.\d+)?$')]
    [string]$PlatformVersion,

    [Parameter(Mandatory = $true)]
    [ValidatePattern('^11\.\d+\.\d+(\.\d+)?$')]
    [string]$LifetimeVersion,

    [Parameter(Mandatory = $true)]
    [ValidateNotNullOrEmpty()]
    [string]$DatabaseServer,

    [Parameter(Mandatory = $true)]
    [ValidateNotNullOrEmpty()]
    [string]$PlatformCatalog,

    [Parameter(Mandatory = $true)]
    [ValidateNotNullOrEmpty()]
    [string]$SessionCatalog,

    [Parameter(Mandatory = $true)]
    [ValidateNotNullOrEmpty()]
    [string]$LoggingCatalog,

    [Parameter(Mandatory = $true)]
    [ValidateNotNullOrEmpty()]
    [string]$DatabaseAdminUser,

    [Parameter(Mandatory = $true)]
    [ValidateNotNullOrEmpty()]
    [string]$DatabaseAdminPassword,

    [Parameter(Mandatory = $true)]
    [ValidateNotNullOrEmpty()]
    [string]$ControllerAddress,

    [Parameter(Mandatory = $true)]
    [ValidateNotNullOrEmpty()]
    [string]$PrivateKey,

    [Parameter(Mandatory = $true)]
    [ValidateNotNullOrEmpty()]
    [string]$StorageAccount,

    [Parameter(Mandatory = $true)]
    [ValidateNotNullOrEmpty()]
    [string]$FileShare,

    # Pinned so that every instance, including those a scale-out adds months later, runs the
    # same module code.
    [Parameter()]
    [string]$SetupToolsVersion = '3.18.1.0',

    # How long a front-end waits for its controller to answer before giving up.
    [Parameter()]
    [ValidateRange(1, 240)]
    [int]$ControllerWaitMinutes = 90
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
# The module logs setting values (passwords included) on its verbose and debug streams, which a
# transcript would capture: keep them off.
$VerbosePreference = 'SilentlyContinue'
$DebugPreference = 'SilentlyContinue'

$StateDir = Join-Path $env:ProgramData 'OutSystemsSetup'
$StateFile = Join-Path $StateDir 'state.json'
$LogDir = Join-Path $StateDir 'logs'
$DataVolumeLabel = 'OutSystems'
$IsFrontend = $Role -eq 'frontend'
$HostsServiceCenter = -not $IsFrontend

#region helpers

function Write-Step([string]$Message) {
    Write-Output ("[{0:u}] {1}" -f (Get-Date).ToUniversalTime(), $Message)
}

function Read-SetupState {
    if (Test-Path -LiteralPath $StateFile) {
        $json = Get-Content -LiteralPath $StateFile -Raw | ConvertFrom-Json
        $state = @{}
        foreach ($property in $json.PSObject.Properties) { $state[$property.Name] = [string]$property.Value }
        return $state
    }
    return @{}
}

function Save-SetupState([hashtable]$State) {
    $State | ConvertTo-Json | Set-Content -LiteralPath $StateFile -Encoding UTF8
}

function Test-PrivateKeyFormat([string]$Key) {
    try {
        return ([Convert]::FromBase64String($Key)).Length -eq 16
    }
    catch [System.FormatException] {
        return $false
    }
}

# Passwords of the OutSystems database users and of the RabbitMQ user, derived from the
# environment's private key: identical on the controller and every front-end without being passed
# around, and stable across re-runs. Whoever can read private.key can already decrypt every
# setting of server.hsconf, so deriving from it adds no exposure.
function Get-DerivedSecret([string]$Purpose) {
    $hmac = [System.Security.Cryptography.HMACSHA256]::new([Convert]::FromBase64String($PrivateKey))
    try {
        $digest = $hmac.ComputeHash([Text.Encoding]::UTF8.GetBytes("outsystems-setup/v1/$Purpose"))
    }
    finally {
        $hmac.Dispose()
    }
    $text = [Convert]::ToBase64String($digest).TrimEnd('=').Replace('+', 'x').Replace('/', 'y')
    # A fixed prefix satisfies Azure SQL's complexity rule (upper, lower, digit, symbol).
    return 'Os1!' + $text.Substring(0, 28)
}

function Get-Fingerprint([string[]]$Values) {
    $hmac = [System.Security.Cryptography.HMACSHA256]::new([Convert]::FromBase64String($PrivateKey))
    try {
        $digest = $hmac.ComputeHash([Text.Encoding]::UTF8.GetBytes(($Values -join "`n")))
    }
    finally {
        $hmac.Dispose()
    }
    return ([BitConverter]::ToString($digest)).Replace('-', '')
}

function Resolve-OSVersion([string]$Requested, [string]$Application) {
    if ($Requested -match '^\d+\.\d+\.\d+\.\d+$') { return $Requested }
    $candidates = @(Get-OSRepoAvailableVersions -MajorVersion '11' -Application $Application -ErrorAction Stop |
            Where-Object { "$_".StartsWith("$Requested.") } |
            Sort-Object { [version]"$_" } -Descending)
    if ($candidates.Count -eq 0) {
        throw "No $Application build of version $Requested is available in the OutSystems repository."
    }
    return [string]$candidates[0]
}

function New-SqlCredential {
    $secure = ConvertTo-SecureString -String $DatabaseAdminPassword -AsPlainText -Force
    return New-Object System.Management.Automation.PSCredential ($DatabaseAdminUser, $secure)
}

function Get-InstallDir {
    # The data disk is found by its label, not by a letter (a DVD drive may hold any letter).
    $volume = Get-Volume -FileSystemLabel $DataVolumeLabel -ErrorAction SilentlyContinue |
        Where-Object { $_.DriveLetter } | Select-Object -First 1
    if ($volume) { return "$($volume.DriveLetter):\OutSystems" }
    return (Join-Path $env:ProgramFiles 'OutSystems')
}

#endregion

#region steps

function Initialize-DataDisk {
    # The VM's premium data disk holds the installation; only a raw (never initialized) disk is
    # touched, so a re-run cannot format a disk that already carries data.
    $raw = @(Get-Disk | Where-Object { $_.PartitionStyle -eq 'RAW' -and $_.OperationalStatus -eq 'Online' })
    if ($raw.Count -eq 0) {
        Write-Step 'Data disk: nothing to initialize'
        return
    }
    if (Get-Volume -FileSystemLabel $DataVolumeLabel -ErrorAction SilentlyContinue) {
        Write-Step 'Data disk: the OutSystems volume exists already, leaving other disks alone'
        return
    }
    Write-Step "Data disk: initializing disk $($raw[0].Number) as the OutSystems volume"
    $raw[0] | Initialize-Disk -PartitionStyle GPT -PassThru |
        New-Partition -UseMaximumSize -AssignDriveLetter |
        Format-Volume -FileSystem NTFS -NewFileSystemLabel $DataVolumeLabel -Confirm:$false | Out-Null
}

function Import-SetupTools {
    $installed = Get-Module -ListAvailable -Name 'Outsystems.SetupTools' |
        Where-Object { $_.Version -eq [version]$SetupToolsVersion }
    if (-not $installed) {
        Write-Step "Installing Outsystems.SetupTools $SetupToolsVersion from the PowerShell Gallery"
        [Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor [Net.SecurityProtocolType]::Tls12
        if (-not (Get-PackageProvider -ListAvailable -Name NuGet -ErrorAction SilentlyContinue)) {
            Install-PackageProvider -Name NuGet -MinimumVersion 2.8.5.201 -Force | Out-Null
        }
        Install-Module -Name 'Outsystems.SetupTools' -RequiredVersion $SetupToolsVersion -Repository PSGallery -Force -Scope AllUsers
    }
    Import-Module -Name 'Outsystems.SetupTools' -RequiredVersion $SetupToolsVersion -Force
}

function Install-Prerequisites([hashtable]$State) {
    if ($State['prereqs'] -eq '11.0') {
        Write-Step 'Prerequisites: already installed'
        return
    }
    Write-Step 'Prerequisites: checking the hardware and installing IIS, .NET and the other prerequisites'
    Test-OSServerHardwareReqs -MajorVersion '11.0' -ErrorAction Stop | Out-Null
    Test-OSServerSoftwareReqs -MajorVersion '11.0' -ErrorAction Stop | Out-Null
    $result = Install-OSServerPreReqs -MajorVersion '11.0' -InstallIISMgmtConsole:$false -ErrorAction Stop
    if ($result.RebootNeeded) {
        # The Custom Script Extension does not resume after a reboot: record nothing, so that the
        # next run (after the reboot) repeats the check, and carry on, which OutSystems supports.
        Write-Step 'Prerequisites: installed; Windows asks for a reboot, which the next run will honour'
        return
    }
    $State['prereqs'] = '11.0'
    Save-SetupState $State
}

function Install-PlatformServer([hashtable]$State, [string]$InstallDir) {
    $installed = Get-OSServerVersion -ErrorAction SilentlyContinue
    $arguments = @{ InstallDir = $InstallDir; ErrorAction = 'Stop' }
    if ($Role -eq 'lifetime') {
        # LifeTime ships as its own installer bundling the Platform Server it needs, so the
        # LifeTime version (not -PlatformVersion) decides what is installed here.
        if ($installed -and $State['lifetimeInstalled'] -eq $LifetimeVersion) {
            Write-Step "LifeTime with Platform Server: $LifetimeVersion already installed"
            return
        }
        $arguments['Version'] = Resolve-OSVersion -Requested $LifetimeVersion -Application 'Lifetime'
        $arguments['WithLifetime'] = $true
    }
    else {
        $target = Resolve-OSVersion -Requested $PlatformVersion -Application 'PlatformServer'
        if ($installed -and ([version]$installed -gt [version]$target)) {
            throw "Platform Server $installed is newer than the requested $target; downgrades are not supported."
        }
        if ($installed -and ([version]$installed -eq [version]$target)) {
            Write-Step "Platform Server: $installed already installed"
            return
        }
        $arguments['Version'] = $target
    }
    # Front-ends never run RabbitMQ: cache invalidation lives on the controller. Module versions
    # that install it by default take -SkipRabbitMQ; newer ones install it only on request.
    $parameters = (Get-Command -Name Install-OSServer).Parameters
    if ($IsFrontend -and -not $parameters.ContainsKey('InstallRabbitMQ')) {
        $arguments['SkipRabbitMQ'] = $true
    }
    Write-Step "Platform Server: installing $($arguments['Version']) in $InstallDir"
    $result = Install-OSServer @arguments
    if (-not $result.Success) { throw "Platform Server installation failed: $($result.Message)" }
    if ($Role -eq 'lifetime') {
        $State['lifetimeInstalled'] = $LifetimeVersion
        Save-SetupState $State
    }
}

function Install-CacheInvalidationService {
    if ($IsFrontend) { return }
    # Install-OSRabbitMQ skips an existing installation by itself.
    Write-Step 'RabbitMQ: making sure the cache invalidation service is installed'
    $result = Install-OSRabbitMQ -VirtualHosts '/OutSystems' -ErrorAction Stop
    if ($result -and -not $result.Success) { throw "RabbitMQ installation failed: $($result.Message)" }
}

function Disable-DeploymentControllerOnFrontend {
    if (-not $IsFrontend) { return }
    $service = Get-Service -Name 'OutSystems Deployment Controller Service' -ErrorAction SilentlyContinue
    if ($service -and $service.StartType -ne 'Disabled') {
        Write-Step 'Front-end: disabling the local Deployment Controller service'
        $service | Stop-Service -Force -WarningAction SilentlyContinue
        Set-Service -Name $service.Name -StartupType Disabled
    }
}

function Set-PrivateKeyFile([string]$OSInstallDir) {
    # Written before the configuration tool runs, so that every server of the environment
    # encrypts and decrypts its settings with the same key.
    $path = Join-Path $OSInstallDir 'private.key'
    if (Test-Path -LiteralPath $path) {
        $current = @(Get-Content -LiteralPath $path | Where-Object { $_ -and -not $_.StartsWith('--') })
        if ($current.Count -gt 0 -and $current[-1].Trim() -eq $PrivateKey) {
            Write-Step 'Private key: already in place'
            return
        }
        if ($current.Count -gt 0 -and (Test-Path -LiteralPath (Join-Path $OSInstallDir 'server.hsconf'))) {
            # Replacing the key of a configured server would leave its encrypted settings unreadable.
            throw 'private.key holds a different key than the one given; refusing to replace it on a configured server.'
        }
    }
    Write-Step 'Private key: writing private.key'
    $lines = @(
        '--WARNING: this file contains the private encryption key of this OutSystems environment.',
        '--It is confidential: never share it.',
        $PrivateKey
    )
    Set-Content -LiteralPath $path -Value $lines -Encoding ASCII
}

function Set-HsconfValues([string]$OSInstallDir, [System.Collections.Specialized.OrderedDictionary]$Values) {
    # Edits server.hsconf directly instead of through Set-OSServerConfig, which writes every value
    # it sets (passwords included) to its log. Values written here are plain; the configuration
    # tool encrypts the password fields when it applies them.
    $path = Join-Path $OSInstallDir 'server.hsconf'
    [xml]$document = Get-Content -LiteralPath $path -Raw
    $root = $document.DocumentElement
    foreach ($key in $Values.Keys) {
        $sectionName, $settingName = $key.Split('/')
        $section = $root.SelectSingleNode($sectionName)
        if (-not $section) { $section = $root.AppendChild($document.CreateElement($sectionName)) }
        $setting = $section.SelectSingleNode($settingName)
        if (-not $setting) { $setting = $section.AppendChild($document.CreateElement($settingName)) }
        $setting.InnerText = [string]$Values[$key]
        if ($setting.Attributes['encrypted']) { $setting.SetAttribute('encrypted', 'false') }
    }
    $document.Save($path)
}

function Invoke-ServerConfiguration([hashtable]$State) {
    $osInstallDir = Get-OSServerInstallDir -ErrorAction Stop
    $serverVersion = Get-OSServerVersion -ErrorAction Stop
    $sessionUser = 'OSSTATE'
    $adminUser = 'OSADMIN'
    $runtimeUser = 'OSRUNTIME'
    $logAdminUser = 'OSADMIN_LOG'
    $logRuntimeUser = 'OSRUNTIME_LOG'
    $rabbitUser = 'outsystems'

    $plain = [ordered]@{
        'PlatformDatabaseConfiguration/UsedAuthenticationMode' = 'Database Authentication'
        'PlatformDatabaseConfiguration/Server'                 = $DatabaseServer
        'PlatformDatabaseConfiguration/Catalog'                = $PlatformCatalog
        'PlatformDatabaseConfiguration/AdminUser'              = $adminUser
        'PlatformDatabaseConfiguration/RuntimeUser'            = $runtimeUser
        'SessionDatabaseConfiguration/UsedAuthenticationMode'  = 'Database Authentication'
        'SessionDatabaseConfiguration/Server'                   = $DatabaseServer
        'SessionDatabaseConfiguration/Catalog'                 = $SessionCatalog
        'SessionDatabaseConfiguration/SessionUser'             = $sessionUser
        'LoggingDatabaseConfiguration/UsedAuthenticationMode'  = 'Database Authentication'
        'LoggingDatabaseConfiguration/Server'                  = $DatabaseServer
        'LoggingDatabaseConfiguration/Catalog'                 = $LoggingCatalog
        'LoggingDatabaseConfiguration/AdminUser'               = $logAdminUser
        'LoggingDatabaseConfiguration/RuntimeUser'             = $logRuntimeUser
        'ServiceConfiguration/CompilerServerHostname'          = $ControllerAddress
        'CacheInvalidationConfiguration/ServiceHost'           = $ControllerAddress
        'CacheInvalidationConfiguration/ServicePort'           = '5672'
        'CacheInvalidationConfiguration/ServiceUsername'       = $rabbitUser
        'CacheInvalidationConfiguration/VirtualHost'           = '/OutSystems'
        'OtherConfigurations/DBTimeout'                        = '60'
    }
    $secret = [ordered]@{
        'PlatformDatabaseConfiguration/AdminPassword'   = Get-DerivedSecret $adminUser
        'PlatformDatabaseConfiguration/RuntimePassword' = Get-DerivedSecret $runtimeUser
        'SessionDatabaseConfiguration/SessionPassword'  = Get-DerivedSecret $sessionUser
        'LoggingDatabaseConfiguration/AdminPassword'    = Get-DerivedSecret $logAdminUser
        'LoggingDatabaseConfiguration/RuntimePassword'  = Get-DerivedSecret $logRuntimeUser
        'CacheInvalidationConfiguration/ServicePassword' = Get-DerivedSecret $rabbitUser
    }

    # One keyed fingerprint of everything the configuration depends on: the configuration tool
    # encrypts what it applies, so the file itself cannot tell whether the desired values are in.
    $inputs = @($Role, $serverVersion, $DatabaseAdminUser, $DatabaseAdminPassword)
    foreach ($key in $plain.Keys) { $inputs += "$key=$($plain[$key])" }
    foreach ($key in $secret.Keys) { $inputs += "$key=$($secret[$key])" }
    $fingerprint = Get-Fingerprint $inputs
    if ($State['configuration'] -eq $fingerprint -and (Test-Path -LiteralPath (Join-Path $osInstallDir 'server.hsconf'))) {
        Write-Step 'Configuration: already applied'
        return
    }

    if (-not (Test-Path -LiteralPath (Join-Path $osInstallDir 'server.hsconf'))) {
        Write-Step 'Configuration: creating server.hsconf for SQL Server'
        # -PrivateKey writes private.key from the module's template; checked again just below.
        New-OSServerConfig -DatabaseProvider 'SQL' -PrivateKey $PrivateKey -Force -ErrorAction Stop | Out-Null
    }
    Set-PrivateKeyFile $osInstallDir

    Write-Step "Configuration: database $DatabaseServer (catalogs $PlatformCatalog, $SessionCatalog, $LoggingCatalog), controller $ControllerAddress"
    foreach ($key in $plain.Keys) {
        $sectionName, $settingName = $key.Split('/')
        Set-OSServerConfig -SettingSection $sectionName -Setting $settingName -Value $plain[$key] -ErrorAction Stop | Out-Null
    }
    Set-HsconfValues -OSInstallDir $osInstallDir -Values $secret

    if ($IsFrontend) { Wait-Controller }

    $credential = New-SqlCredential
    $apply = @{
        Apply                = $true
        PlatformDBCredential = $credential
        SessionDBCredential  = $credential
        LogDBCredential      = $credential
        ErrorAction          = 'Stop'
    }
    if ($IsFrontend) {
        # The controller created the session catalog; a front-end joining later must not rebuild it.
        $apply['SkipSessionRebuild'] = $true
    }
    else {
        $apply['ConfigureCacheInvalidationService'] = $true
    }
    Write-Step 'Configuration: applying (configuration tool)'
    Set-OSServerConfig @apply | Out-Null

    $State['configuration'] = $fingerprint
    Save-SetupState $State
}

function Wait-Controller {
    $deadline = (Get-Date).AddMinutes($ControllerWaitMinutes)
    while (-not (Get-OSPlatformVersion -Host $ControllerAddress -ErrorAction SilentlyContinue)) {
        if ((Get-Date) -gt $deadline) {
            throw "The controller $ControllerAddress did not answer within $ControllerWaitMinutes minutes."
        }
        Write-Step "Front-end: waiting for the controller $ControllerAddress"
        Start-Sleep -Seconds 30
    }
}

function Publish-SystemComponents([hashtable]$State) {
    if (-not $HostsServiceCenter) { return }
    $serverVersion = Get-OSServerVersion -ErrorAction Stop
    if ($State['systemComponents'] -eq $serverVersion) {
        Write-Step 'Service Center and system components: already published'
    }
    else {
        # Both cmdlets skip what is already at the right version; the marker only saves time.
        Write-Step 'Service Center: installing'
        Install-OSPlatformServiceCenter -ErrorAction Stop | Out-Null
        Write-Step 'System components: publishing'
        Publish-OSPlatformSystemComponents -ErrorAction Stop | Out-Null
        if (-not $State['license']) {
            # Only ever once: a license installed later by the customer must survive re-runs.
            Write-Step 'License: installing the trial license'
            Install-OSPlatformLicense -ErrorAction Stop | Out-Null
            $State['license'] = 'trial'
        }
        $State['systemComponents'] = $serverVersion
        Save-SetupState $State
    }
    if ($Role -eq 'lifetime') {
        if ($State['lifetimePublished'] -eq $LifetimeVersion) {
            Write-Step 'LifeTime: already published'
            return
        }
        Write-Step 'LifeTime: publishing'
        Publish-OSPlatformLifetime -ErrorAction Stop | Out-Null
        $State['lifetimePublished'] = $LifetimeVersion
        Save-SetupState $State
    }
}

function Set-ServerTuning([hashtable]$State) {
    $serverVersion = Get-OSServerVersion -ErrorAction Stop
    if ($State['tuning'] -eq $serverVersion) {
        Write-Step 'Tuning and security settings: already applied'
        return
    }
    Write-Step 'Tuning and security settings: applying'
    Set-OSServerPerformanceTunning -ErrorAction Stop | Out-Null
    Set-OSServerSecuritySettings -ErrorAction Stop | Out-Null
    $State['tuning'] = $serverVersion
    Save-SetupState $State
}

function Set-FirewallRules {
    # Ports from the platform reference: HTTP(S) from the gateway; the deployment service (12001)
    # on every server; the Deployment Controller (12000) and RabbitMQ (5672) where they run, open
    # only to the environment's own subnet.
    $rules = @(
        @{ Name = 'OutSystems-HTTP'; Port = 80; Remote = 'Any' },
        @{ Name = 'OutSystems-HTTPS'; Port = 443; Remote = 'Any' },
        @{ Name = 'OutSystems-DeploymentService'; Port = 12001; Remote = 'LocalSubnet' }
    )
    if (-not $IsFrontend) {
        $rules += @{ Name = 'OutSystems-DeploymentController'; Port = 12000; Remote = 'LocalSubnet' }
        $rules += @{ Name = 'OutSystems-CacheInvalidation'; Port = 5672; Remote = 'LocalSubnet' }
    }
    foreach ($rule in $rules) {
        $existing = Get-NetFirewallRule -Name $rule.Name -ErrorAction SilentlyContinue
        if ($existing) {
            Set-NetFirewallRule -Name $rule.Name -Enabled True -Direction Inbound -Action Allow -Protocol TCP -LocalPort $rule.Port -RemoteAddress $rule.Remote
        }
        else {
            New-NetFirewallRule -Name $rule.Name -DisplayName $rule.Name -Enabled True -Direction Inbound -Action Allow -Protocol TCP -LocalPort $rule.Port -RemoteAddress $rule.Remote | Out-Null
        }
    }
    Write-Step "Firewall: inbound TCP $(($rules | ForEach-Object { $_.Port }) -join ', ') allowed"
}

function Protect-LogFile([string]$LogPath) {
    # Second line of defence: a transcript header names the host command line, which carries the
    # extension's parameters. Drop that line and blank out every secret value that could appear.
    $secrets = @($DatabaseAdminPassword, $PrivateKey)
    if (Test-PrivateKeyFormat $PrivateKey) {
        foreach ($purpose in 'OSADMIN', 'OSRUNTIME', 'OSSTATE', 'OSADMIN_LOG', 'OSRUNTIME_LOG', 'outsystems') {
            $secrets += Get-DerivedSecret $purpose
        }
    }
    # The topology passes secrets base64-encoded on the command line: scrub that form too.
    foreach ($value in @($secrets)) {
        if ($value) { $secrets += [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes($value)) }
    }
    $lines = Get-Content -LiteralPath $LogPath | Where-Object { $_ -notmatch '^(Host Application|Command start time|Username|RunAs User):' }
    $text = $lines -join [Environment]::NewLine
    foreach ($value in $secrets) {
        if ($value) { $text = $text.Replace($value, '[redacted]') }
    }
    Set-Content -LiteralPath $LogPath -Value $text -Encoding UTF8
}

function Copy-LogToFileShare([string]$LogPath) {
    # Best effort: the log stays on the VM whatever happens here.
    $name = "$($env:COMPUTERNAME.ToLowerInvariant())/$(Split-Path -Leaf $LogPath)"
    try {
        $token = (Invoke-RestMethod -Headers @{ Metadata = 'true' } -TimeoutSec 10 -Uri 'http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fstorage.azure.com%2F').access_token
        $base = "https://$StorageAccount.file.core.windows.net/$FileShare"
        $headers = @{
            Authorization               = "Bearer $token"
            'x-ms-version'              = '2023-11-03'
            'x-ms-file-request-intent'  = 'backup'
        }
        $directory = "$base/$($env:COMPUTERNAME.ToLowerInvariant())?restype=directory"
        try {
            Invoke-RestMethod -Method Put -Uri $directory -Headers $headers | Out-Null
        }
        catch [System.Net.WebException] {
            # 409: the directory exists already.
            if ([int]$_.Exception.Response.StatusCode -ne 409) { throw }
        }
        $bytes = [IO.File]::ReadAllBytes($LogPath)
        Invoke-RestMethod -Method Put -Uri "$base/$name" -Headers ($headers + @{ 'x-ms-type' = 'file'; 'x-ms-content-length' = "$($bytes.Length)" }) | Out-Null
        $chunk = 4 * 1024 * 1024
        for ($offset = 0; $offset -lt $bytes.Length; $offset += $chunk) {
            $count = [Math]::Min($chunk, $bytes.Length - $offset)
            $range = @{ 'x-ms-range' = "bytes=$offset-$($offset + $count - 1)"; 'x-ms-write' = 'update' }
            $body = New-Object byte[] $count
            [Array]::Copy($bytes, $offset, $body, 0, $count)
            Invoke-RestMethod -Method Put -Uri "$base/$name`?comp=range" -Headers ($headers + $range) -Body $body -ContentType 'application/octet-stream' | Out-Null
        }
        Write-Output "Setup log copied to $base/$name"
    }
    catch {
        Write-Output "Setup log not copied to the file share ($($_.Exception.Message)); it stays in $LogPath"
    }
}

#endregion

New-Item -ItemType Directory -Force -Path $LogDir | Out-Null
$logPath = Join-Path $LogDir ("setup-{0:yyyyMMddTHHmmssZ}.log" -f (Get-Date).ToUniversalTime())
Start-Transcript -LiteralPath $logPath -Append | Out-Null
$failed = $false
try {
    if (-not (Test-PrivateKeyFormat $PrivateKey)) {
        throw '-PrivateKey must be the base64 text of 16 bytes.'
    }
    Write-Step "OutSystems setup: role $Role, Platform Server $PlatformVersion$(if ($Role -eq 'lifetime') { ", LifeTime $LifetimeVersion" }), controller $ControllerAddress"
    $state = Read-SetupState
    Initialize-DataDisk
    $installDir = Get-InstallDir
    Import-SetupTools
    Install-Prerequisites $state
    Install-PlatformServer $state $installDir
    Install-CacheInvalidationService
    Disable-DeploymentControllerOnFrontend
    Invoke-ServerConfiguration $state
    Publish-SystemComponents $state
    Set-ServerTuning $state
    Set-FirewallRules
    Write-Step 'OutSystems setup: done'
}
catch {
    $failed = $true
    # The message and position only: an error record's full text could echo bound parameters.
    Write-Output "OutSystems setup failed: $($_.Exception.Message) (line $($_.InvocationInfo.ScriptLineNumber))"
}
finally {
    Stop-Transcript | Out-Null
    Protect-LogFile $logPath
    Copy-LogToFileShare $logPath
}
if ($failed) { exit 1 }
exit 0
